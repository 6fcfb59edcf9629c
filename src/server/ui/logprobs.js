// Token probabilities: compact storage of the server's logprobs and the token view with its tooltip.
import { h } from './util.js';

const MAX_TOKEN = 512;  // characters kept of one token's text (store.js validates the same bound)
const round = (p) => Number(Math.min(1, Math.max(0, p)).toPrecision(3));
const probability = (logprob) => (typeof logprob === 'number' && Number.isFinite(logprob) ? round(Math.exp(logprob)) : 0);

// One token of a chunk's `logprobs.content` as [token, p, [[alternative, p], ...]]: probabilities
// with 3 significant digits, the chosen token left out of its alternatives (it is stored once).
export function compactToken(entry) {
  const token = typeof entry?.token === 'string' ? entry.token.slice(0, MAX_TOKEN) : '';
  const alternatives = [];
  let skipped = false;
  for (const alt of Array.isArray(entry?.top_logprobs) ? entry.top_logprobs : []) {
    if (typeof alt?.token !== 'string') continue;
    if (!skipped && alt.token === token) { skipped = true; continue; }
    alternatives.push([alt.token.slice(0, MAX_TOKEN), probability(alt.logprob)]);
  }
  return [token, probability(entry?.logprob), alternatives.slice(0, 19)];
}

// Control characters drawn visibly: newline ↵, tab →, carriage return ␍, others as control pictures.
export function visibleToken(text) {
  let out = '';
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === '\n') out += '↵';
    else if (c === '\t') out += '→';
    else if (c === '\r') out += '␍';
    else if (code < 0x20) out += String.fromCodePoint(0x2400 + code);
    else if (code === 0x7f) out += '␡';
    else out += c;
  }
  return out;
}

export const percent = (p) => `${(p * 100).toFixed(1)}%`;

// Appends spans for lp[from..] to `tokens` (a .tokens element); each points at the tooltip `tipId`.
export function appendTokenSpans(tokens, lp, from, tipId) {
  const fragment = document.createDocumentFragment();
  for (let i = from; i < lp.length; i++) {
    const [text, p] = lp[i];
    const span = h('span', {
      className: 'token', tabIndex: 0, 'aria-describedby': tipId,
      dataset: { prob: String(p), index: String(i) },
    }, visibleToken(text) || '∅');
    span.style.setProperty('--p', String(p));
    fragment.append(span);
    if (text.endsWith('\n')) fragment.append(h('br'));
  }
  tokens.append(fragment);
}

// The view: a .tokens block of spans plus one shared tooltip (role=tooltip), filled on hover or focus.
export function buildTokenView(content, lp, tipId) {
  const tokens = h('div', { className: 'tokens' });
  appendTokenSpans(tokens, lp, 0, tipId);
  const tip = h('div', { className: 'token-tip', id: tipId, role: 'tooltip', hidden: true });
  content.replaceChildren(tokens, tip);
  return tokens;
}

function fillTip(tip, entry) {
  const [token, p, alternatives] = entry;
  const rows = [[token, p, true], ...alternatives.map(([t, q]) => [t, q, false])].sort((a, b) => b[1] - a[1]);
  tip.replaceChildren(
    h('div', { className: 'tip-head' }, 'Top alternatives'),
    h('ul', {}, rows.map(([t, q, chosen]) =>
      h('li', { className: chosen ? 'chosen' : '', 'aria-current': chosen ? 'true' : null },
        h('span', { className: 'tip-token' }, visibleToken(t) || '∅'), '  ',
        h('span', { className: 'tip-prob' }, percent(q))))),
  );
}

// Wires hover, focus and Escape on a message's .content element once; `lookup()` gives the
// message's current compact logprobs.
export function wireTooltip(content, lookup) {
  let shownFor = null;
  const tipOf = () => content.querySelector(':scope > .token-tip');
  const hide = () => {
    const tip = tipOf();
    if (tip) { tip.hidden = true; tip.replaceChildren(); }
    shownFor = null;
  };
  const show = (span) => {
    const tip = tipOf();
    const entry = lookup()?.[Number(span.dataset.index)];
    if (!tip || !entry) return;
    fillTip(tip, entry);
    tip.hidden = false;
    shownFor = span;
    const box = content.getBoundingClientRect(), at = span.getBoundingClientRect();
    const left = Math.max(0, Math.min(at.left - box.left, box.width - tip.offsetWidth));
    tip.style.left = `${left}px`;
    tip.style.top = `${at.bottom - box.top + 4}px`;
  };
  content.addEventListener('mouseover', (e) => {
    const span = e.target.closest?.('span.token');
    if (span && span !== shownFor) show(span);
  });
  content.addEventListener('mouseout', (e) => {
    const to = e.relatedTarget;
    if (to instanceof Node && (to === shownFor || tipOf()?.contains(to) || (shownFor && to.closest?.('span.token') === shownFor))) return;
    if (document.activeElement?.closest?.('span.token') && content.contains(document.activeElement)) {
      show(document.activeElement);  // keep the focused token's tooltip
      return;
    }
    if (e.target.closest?.('span.token, .token-tip')) hide();
  });
  content.addEventListener('focusin', (e) => {
    const span = e.target.closest?.('span.token');
    if (span) show(span);
  });
  content.addEventListener('focusout', (e) => {
    if (!(e.relatedTarget instanceof Node && content.contains(e.relatedTarget))) hide();
  });
  content.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && shownFor) {
      hide();
      e.stopPropagation();  // Esc here closes the tooltip, not the stream
    }
  });
}
