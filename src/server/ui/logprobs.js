// Token probabilities: compact storage of the server's logprobs and the token view with its tooltip.
import { h } from './util.js';

const MAX_TOKEN = 512;  // characters kept of one token's text (store.js validates the same bound)
const round = (p) => Number(Math.min(1, Math.max(0, p)).toPrecision(3));
const probability = (logprob) => (typeof logprob === 'number' && Number.isFinite(logprob) ? round(Math.exp(logprob)) : 0);

// Bytes as hex in angle quotes: [0xe2, 0x80] -> "‹E2 80›" (a token that is part of a character).
export const hexBytes = (bytes) => `‹${Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ')}›`;

const isByteArray = (v) => Array.isArray(v) && v.length > 0 && v.length <= 4 * MAX_TOKEN &&
  v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);

// Leading byte -> the length of its UTF-8 sequence (0: not a leading byte).
const sequenceLength = (b) => (b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0);

// One token's bytes decoded on their own: whole UTF-8 characters as text, the bytes of an incomplete
// or invalid sequence as hex (an alternative token has no neighbours to complete it).
export function decodeAlone(bytes) {
  const strict = new TextDecoder('utf-8', { fatal: true });
  let out = '', bad = [];
  const flushBad = () => { if (bad.length) { out += hexBytes(bad); bad = []; } };
  for (let i = 0; i < bytes.length;) {
    const n = sequenceLength(bytes[i]);
    let text = null;
    if (n && i + n <= bytes.length) {
      try { text = strict.decode(new Uint8Array(bytes.slice(i, i + n))); } catch { text = null; }
    }
    if (text === null) { bad.push(bytes[i]); i++; continue; }
    flushBad();
    out += text;
    i += n;
  }
  flushBad();
  return out;
}

// Decodes the chosen tokens of one reply in order (one streaming TextDecoder): each character goes
// to the token whose bytes complete it; a token that completes none shows its bytes as hex.
// Call it with each `logprobs.content` entry; it returns the entry's compact form.
export function tokenDecoder() {
  const decoder = new TextDecoder();
  return (entry) => {
    let text = null;
    if (isByteArray(entry?.bytes)) {
      text = decoder.decode(new Uint8Array(entry.bytes), { stream: true });
      if (text === '') text = hexBytes(entry.bytes);
    }
    return compactToken(entry, text);
  };
}

// One token of a chunk's `logprobs.content` as [token, p, [[alternative, p], ...]]: probabilities
// with 3 significant digits, the chosen token left out of its alternatives (it is stored once).
// `text` is the chosen token's text as tokenDecoder() decoded it from its bytes (default: its
// `token`, or its bytes decoded alone); the stored strings are what the view shows.
export function compactToken(entry, text = null) {
  const textOf = (e) => (isByteArray(e?.bytes) ? decodeAlone(e.bytes) : typeof e?.token === 'string' ? e.token : '');
  const token = (typeof text === 'string' ? text : textOf(entry)).slice(0, MAX_TOKEN);
  const raw = typeof entry?.token === 'string' ? entry.token : null;
  const alternatives = [];
  let skipped = false;
  for (const alt of Array.isArray(entry?.top_logprobs) ? entry.top_logprobs : []) {
    if (typeof alt?.token !== 'string' && !isByteArray(alt?.bytes)) continue;
    const same = isByteArray(entry?.bytes) && isByteArray(alt.bytes)
      ? alt.bytes.length === entry.bytes.length && alt.bytes.every((b, k) => b === entry.bytes[k])
      : raw !== null && alt.token === raw;
    if (!skipped && same) { skipped = true; continue; }
    alternatives.push([textOf(alt).slice(0, MAX_TOKEN), probability(alt.logprob)]);
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
// The list is one tab stop (a roving tabindex): the first token, or the one focused last, has
// tabindex 0, the others -1; the arrow keys, Home and End move between them (wireTooltip).
export function appendTokenSpans(tokens, lp, from, tipId) {
  const fragment = document.createDocumentFragment();
  const hasStop = tokens.querySelector('span.token[tabindex="0"]') !== null;
  for (let i = from; i < lp.length; i++) {
    const [text, p] = lp[i];
    const span = h('span', {
      className: 'token', tabIndex: !hasStop && i === from ? 0 : -1, 'aria-describedby': tipId,
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
  const tokens = h('div', { className: 'tokens', role: 'group', 'aria-label': 'Tokens (arrow keys move between them)' });
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
    if (!span) return;
    for (const other of span.parentElement.querySelectorAll('span.token[tabindex="0"]')) if (other !== span) other.tabIndex = -1;
    span.tabIndex = 0;  // the list's tab stop follows focus
    show(span);
  });
  content.addEventListener('focusout', (e) => {
    if (!(e.relatedTarget instanceof Node && content.contains(e.relatedTarget))) hide();
  });
  content.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && shownFor) {
      hide();
      e.stopPropagation();  // Esc here closes the tooltip, not the stream
      return;
    }
    const span = e.target.closest?.('span.token');
    if (!span || e.altKey || e.ctrlKey || e.metaKey) return;
    const all = span.parentElement.querySelectorAll('span.token');
    const at = Number(span.dataset.index);
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    all[Math.max(0, Math.min(all.length - 1, to))]?.focus();
  });
}
