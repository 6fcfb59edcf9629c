// Message elements: an <article> per message with its content (Markdown or token view), stats and actions.
import { render } from './markdown.js';
import { h } from './util.js';
import { buildTokenView, appendTokenSpans, wireTooltip } from './logprobs.js';

const ROLE_NAMES = { user: 'You', assistant: 'Assistant' };
const renderedState = new WeakMap();  // .content element -> what it shows now

const button = (action, label, text) =>
  h('button', { type: 'button', className: 'action', 'aria-label': label, title: label, dataset: { action } }, text);

// The element for `message`; fill it with updateMessage(). `getMessage()` returns the live message.
export function createMessageElement(message, getMessage) {
  const content = h('div', { className: 'content' });
  const article = h('article', { className: 'message', dataset: { role: message.role, id: message.id } },
    h('div', { className: 'message-head' }, h('span', { className: 'role' }, ROLE_NAMES[message.role] ?? message.role)),
    content,
    h('div', { className: 'message-error', role: 'alert', hidden: true }),
    h('div', { className: 'message-foot' },
      message.role === 'assistant' ? statsElement() : null,
      h('div', { className: 'actions' })));
  article.setAttribute('aria-label', ROLE_NAMES[message.role] ?? message.role);
  if (message.role === 'assistant') wireTooltip(content, () => getMessage()?.lp);
  return article;
}

function statsElement() {
  const stat = (name, label) => h('span', { className: 'stat', dataset: { stat: name }, title: label });
  return h('div', { className: 'stats', 'aria-label': 'Reply statistics' },
    stat('tokens', 'Tokens generated'), stat('tps', 'Tokens per second while generating'), stat('ttft', 'Time to first token'));
}

export function formatStats(stats) {
  const s = stats ?? {};
  return {
    tokens: s.tokens === undefined ? '' : `${s.tokens} token${s.tokens === 1 ? '' : 's'}`,
    tps: s.tps === undefined ? '' : `${s.tps.toFixed(1)} tok/s`,
    ttft: s.ttft === undefined ? '' : `TTFT ${s.ttft < 1000 ? `${Math.round(s.ttft)} ms` : `${(s.ttft / 1000).toFixed(2)} s`}`,
  };
}

// Re-renders the article from the message. opts: {isLastReply, busy, tokenView} where tokenView
// says whether a reply with logprobs shows tokens (true) or Markdown (false).
export function updateMessage(article, message, opts) {
  const content = article.querySelector('.content');
  const role = message.role;
  if (role === 'assistant') article.dataset.state = message.state ?? 'done';
  const hasTokens = role === 'assistant' && Array.isArray(message.lp) && message.lp.length > 0;
  const showTokens = hasTokens && opts.tokenView;

  const shown = renderedState.get(content) ?? {};
  if (role === 'user') {
    // The user's own text is shown as typed.
    if (shown.text !== message.content) {
      content.replaceChildren(h('p', { className: 'plain' }, message.content));
      renderedState.set(content, { view: 'plain', text: message.content });
    }
  } else if (showTokens) {
    if (shown.view !== 'tokens' || shown.count > message.lp.length) {
      shown.tokens = buildTokenView(content, message.lp, `tip-${message.id}`);
    } else if (shown.count < message.lp.length) {
      appendTokenSpans(shown.tokens, message.lp, shown.count, `tip-${message.id}`);
    }
    renderedState.set(content, { view: 'tokens', tokens: shown.tokens, count: message.lp.length });
  } else if (shown.view !== 'markdown' || shown.text !== message.content || shown.state !== message.state) {
    content.replaceChildren(render(message.content, document));
    if (message.state === 'streaming') content.append(h('span', { className: 'cursor', 'aria-hidden': 'true' }));
    renderedState.set(content, { view: 'markdown', text: message.content, state: message.state });
  }
  content.classList.toggle('token-view', showTokens);

  const error = article.querySelector('.message-error');
  error.hidden = !message.error;
  error.textContent = message.error ?? '';

  const statsEl = article.querySelector('.stats');
  if (statsEl) {
    const text = formatStats(message.stats);
    for (const key of ['tokens', 'tps', 'ttft']) statsEl.querySelector(`[data-stat="${key}"]`).textContent = text[key];
  }

  updateActions(article, message, opts, hasTokens, showTokens);
}

function updateActions(article, message, opts, hasTokens, showTokens) {
  const actions = article.querySelector('.actions');
  const streaming = message.state === 'streaming';
  const wanted = [];
  if (!article.classList.contains('editing')) {
    if (!streaming) wanted.push(['copy', 'Copy message', 'Copy']);
    if (message.role === 'user' && !opts.busy) wanted.push(['edit', 'Edit message', 'Edit']);
    if (message.role === 'assistant' && opts.isLastReply && !opts.busy) wanted.push(['regenerate', 'Regenerate reply', 'Regenerate']);
    if (hasTokens) wanted.push(['view-tokens', showTokens ? 'Show the formatted text' : 'Show token probabilities', showTokens ? 'Text' : 'Tokens']);
  }
  const key = wanted.map((w) => w.join('|')).join(';');
  if (actions.dataset.key === key) return;
  actions.dataset.key = key;
  actions.replaceChildren(...wanted.map(([action, label, text]) => {
    const b = button(action, label, text);
    if (action === 'view-tokens') b.setAttribute('aria-pressed', String(showTokens));
    return b;
  }));
}

// Turns the article into an editor for a user message; returns the textarea.
export function startEditing(article, message) {
  article.classList.add('editing');
  const box = h('textarea', { className: 'edit-box', 'aria-label': 'Edit message', rows: 4 });
  box.value = message.content;
  const editor = h('div', { className: 'editor' }, box,
    h('div', { className: 'editor-actions' },
      h('button', { type: 'button', className: 'primary', dataset: { action: 'save' } }, 'Save & send'),
      h('button', { type: 'button', dataset: { action: 'cancel' } }, 'Cancel')));
  article.querySelector('.content').after(editor);
  article.querySelector('.actions').replaceChildren();
  article.querySelector('.actions').dataset.key = '';
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  return box;
}

export function stopEditing(article) {
  article.classList.remove('editing');
  article.querySelector('.editor')?.remove();
}
