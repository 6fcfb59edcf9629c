// ember's chat UI: conversations, the composer and streaming replies; wires the other modules together.
import { h, newId, copyText, downloadJson, stamp, setStatus } from './util.js';
import { CHATS_KEY, loadConversations, saveConversations, mergeStored, forgetConversation, loadSettings, saveSettings, parseImport, exportData, MAX_IMPORT_BYTES } from './store.js';
import { ApiError, getJson, streamChat } from './api.js';
import { tokenDecoder } from './logprobs.js';
import { createMessageElement, updateMessage, startEditing, stopEditing, formatStats } from './chat.js';
import { initSettings, requestParams, showServerInfo, flagApiKey } from './settings.js';

const $ = (id) => document.getElementById(id);
const els = {
  app: $('app'), list: $('conversation-list'), search: $('search'), messages: $('messages'), empty: $('empty-state'),
  prompt: $('prompt'), send: $('send'), stop: $('stop'), title: $('chat-title'), settings: $('settings'),
  settingsToggle: $('settings-toggle'), navToggle: $('conversations-toggle'), scrim: $('scrim'),
  streamStatus: $('stream-status'), importFile: $('import-file'),
};

const state = {
  conversations: [],
  activeId: null,
  settings: loadSettings(),
  search: '',
  busy: null,                 // {conversation, reply, controller} while a reply streams
  modelId: null,
  tokenView: new Map(),       // reply id -> false when its Markdown view was chosen
  articles: new Map(),        // message id -> <article> of the shown conversation
  pendingRender: new Set(),
  frame: 0,
};

const active = () => state.conversations.find((c) => c.id === state.activeId) ?? null;
const findMessage = (id) => active()?.messages.find((m) => m.id === id) ?? null;

// Takes in what another tab stored (store.js mergeStored), then saves everything.
function persist() {
  syncFromStore();
  const { problem, notice } = saveConversations(state.conversations);
  if (problem) setStatus(problem, 'error');
  else if (notice) setStatus(notice);
}

// Merges the stored conversations into this tab's; the one streaming here keeps this tab's copy.
function syncFromStore(preferStored = false) {
  const { conversations, changed } = mergeStored(state.conversations, { pinned: state.busy?.conversation.id ?? null, preferStored });
  if (!changed) return;
  const before = active();
  state.conversations = conversations;
  if (!active()) state.activeId = null;
  renderConversationList();
  if (active() !== before) renderMessages();
}

// ---------------------------------------------------------------- conversation list

function matches(conversation, query) {
  if (!query) return true;
  const q = query.toLowerCase();
  return conversation.title.toLowerCase().includes(q) || conversation.messages.some((m) => m.content.toLowerCase().includes(q));
}

function renderConversationList() {
  const shown = state.conversations.filter((c) => matches(c, state.search)).sort((a, b) => b.updated - a.updated);
  const items = shown.map((c) => {
    const current = c.id === state.activeId;
    return h('li', { dataset: { conversationId: c.id }, 'aria-current': current ? 'true' : null, className: current ? 'active' : '' },
      h('button', { type: 'button', className: 'open', dataset: { action: 'open' }, title: c.title },
        h('span', { className: 'title' }, c.title)),
      h('span', { className: 'item-actions' },
        h('button', { type: 'button', className: 'icon small', dataset: { action: 'rename' }, 'aria-label': `Rename "${c.title}"`, title: 'Rename' }, '✎'),
        h('button', { type: 'button', className: 'icon small', dataset: { action: 'export' }, 'aria-label': `Export "${c.title}"`, title: 'Export' }, '⤓'),
        h('button', { type: 'button', className: 'icon small', dataset: { action: 'delete' }, 'aria-label': `Delete "${c.title}"`, title: 'Delete' }, '✕')));
  });
  if (items.length === 0) {
    items.push(h('li', { className: 'list-empty' }, state.search ? 'No conversation matches.' : 'No conversations yet.'));
  }
  els.list.replaceChildren(...items);
}

function createConversation() {
  const now = Date.now();
  const conversation = { id: newId('c'), title: 'New chat', created: now, updated: now, messages: [] };
  state.conversations.push(conversation);
  return conversation;
}

function openConversation(id) {
  state.activeId = id;
  renderConversationList();
  renderMessages();
  setNav(false);
}

function onListClick(e) {
  const button = e.target.closest('button[data-action]');
  const item = e.target.closest('li[data-conversation-id]');
  if (!item) return;
  const conversation = state.conversations.find((c) => c.id === item.dataset.conversationId);
  if (!conversation) return;
  switch (button?.dataset.action ?? 'open') {
    case 'open':
      openConversation(conversation.id);
      els.prompt.focus();
      break;
    case 'rename': {
      const title = window.prompt('Rename the conversation:', conversation.title);
      if (title === null || !title.trim()) return;
      conversation.title = title.trim().slice(0, 300);
      persist();
      renderConversationList();
      if (conversation.id === state.activeId) els.title.textContent = conversation.title;
      break;
    }
    case 'export':
      downloadJson(exportData([conversation]), `ember-chat-${stamp()}.json`);
      break;
    case 'delete': {
      if (!window.confirm(`Delete "${conversation.title}"? This cannot be undone.`)) return;
      if (state.busy?.conversation === conversation) state.busy.controller.abort();
      forgetConversation(conversation.id);
      state.conversations = state.conversations.filter((c) => c !== conversation);
      if (state.activeId === conversation.id) {
        state.activeId = [...state.conversations].sort((a, b) => b.updated - a.updated)[0]?.id ?? null;
        renderMessages();
      }
      persist();
      renderConversationList();
      setStatus('Conversation deleted.');
      break;
    }
  }
}

// ---------------------------------------------------------------- messages

function renderOptions(message, conversation) {
  const lastReply = conversation.messages.findLast((m) => m.role === 'assistant');
  return {
    isLastReply: message === lastReply && conversation.messages[conversation.messages.length - 1] === message,
    busy: Boolean(state.busy),
    tokenView: state.tokenView.get(message.id) ?? true,
  };
}

function refreshMessage(message) {
  const article = state.articles.get(message.id);
  const conversation = active();
  if (article && conversation) updateMessage(article, message, renderOptions(message, conversation));
}

function renderMessages() {
  const conversation = active();
  els.title.textContent = conversation?.title ?? 'New chat';
  state.articles.clear();
  const articles = (conversation?.messages ?? []).map((message) => {
    const article = createMessageElement(message, () => findMessage(message.id));
    state.articles.set(message.id, article);
    updateMessage(article, message, renderOptions(message, conversation));
    return article;
  });
  els.empty.hidden = articles.length > 0;
  els.messages.replaceChildren(els.empty, ...articles);
  els.messages.scrollTop = els.messages.scrollHeight;
}

function refreshAll() {
  for (const message of active()?.messages ?? []) refreshMessage(message);
}

function appendMessage(message) {
  const article = createMessageElement(message, () => findMessage(message.id));
  state.articles.set(message.id, article);
  els.empty.hidden = true;
  els.messages.append(article);
  refreshMessage(message);
  els.messages.scrollTop = els.messages.scrollHeight;
}

// Re-renders a streaming reply at most once per frame (from its whole text, never by appending HTML).
function scheduleRender(message) {
  state.pendingRender.add(message);
  if (state.frame) return;
  state.frame = requestAnimationFrame(() => {
    state.frame = 0;
    followingBottom(() => {
      for (const m of state.pendingRender) refreshMessage(m);
      state.pendingRender.clear();
    });
  });
}

// Runs `change`; if the list was scrolled to (near) its end, keeps it there.
function followingBottom(change) {
  const nearBottom = els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 80;
  change();
  if (nearBottom) els.messages.scrollTop = els.messages.scrollHeight;
}

async function onMessagesClick(e) {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  if (button.dataset.action === 'copy-code') {
    const code = button.closest('.code-block')?.querySelector('code');
    const ok = await copyText(code?.textContent ?? '');
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    return;
  }
  const article = button.closest('article.message');
  const message = article && findMessage(article.dataset.id);
  const conversation = active();
  if (!message || !conversation) return;
  switch (button.dataset.action) {
    case 'copy':
      setStatus((await copyText(message.content)) ? 'Copied to the clipboard.' : 'Could not copy: the browser refused.', 'info');
      break;
    case 'view-tokens':
      state.tokenView.set(message.id, !(state.tokenView.get(message.id) ?? true));
      refreshMessage(message);
      article.querySelector('[data-action="view-tokens"]')?.focus();
      break;
    case 'regenerate':
      if (state.busy || conversation.messages[conversation.messages.length - 1] !== message || !settingsOk()) return;
      conversation.messages.pop();
      article.remove();
      state.articles.delete(message.id);
      generate(conversation);
      els.stop.focus();
      break;
    case 'edit':
      if (!state.busy) startEditing(article, message);
      break;
    case 'cancel':
      cancelEditing(article);
      break;
    case 'save': {
      const text = article.querySelector('.edit-box').value;
      if (!text.trim() || state.busy || !settingsOk()) return;
      const index = conversation.messages.indexOf(message);
      message.content = text;
      conversation.messages.splice(index + 1);  // the replies after it no longer follow from it
      stopEditing(article);
      renderMessages();
      generate(conversation);
      els.stop.focus();
      break;
    }
  }
}

// Closes a message's editor unsaved; focus returns to its Edit button.
function cancelEditing(article) {
  stopEditing(article);
  const message = findMessage(article.dataset.id);
  if (message) refreshMessage(message);
  article.querySelector('[data-action="edit"]')?.focus();
}

// ---------------------------------------------------------------- sending and streaming

function updateComposer() {
  const busy = Boolean(state.busy);
  els.send.hidden = busy;
  els.send.disabled = busy;
  els.stop.hidden = !busy;
  els.stop.disabled = !busy;
}

// Checks the sampling settings before a request; on a problem, says so and opens the panel.
function settingsOk() {
  const { errors } = requestParams();
  if (!errors) return true;
  setStatus(`Fix the settings first: ${errors[0].message}`, 'error');
  openSettings($(errors[0].id));
  return false;
}

function send() {
  const text = els.prompt.value;
  if (state.busy || !text.trim() || !settingsOk()) return;
  let conversation = active();
  if (!conversation) {
    conversation = createConversation();
    state.activeId = conversation.id;
    renderMessages();
  }
  if (conversation.messages.length === 0 && conversation.title === 'New chat') {
    conversation.title = text.trim().replace(/\s+/g, ' ').slice(0, 60);
    els.title.textContent = conversation.title;
  }
  const message = { id: newId('m'), role: 'user', content: text };
  conversation.messages.push(message);
  appendMessage(message);
  els.prompt.value = '';
  autosize();
  const fromButton = document.activeElement === els.send;
  generate(conversation);
  if (fromButton) els.stop.focus();  // the Send button is hidden now
}

function requestBody(conversation) {
  const { params } = requestParams();
  const messages = [];
  if (state.settings.systemPrompt.trim()) messages.push({ role: 'system', content: state.settings.systemPrompt });
  for (const m of conversation.messages) {
    if (m.role === 'assistant' && (m.state === 'error' || m.state === 'streaming')) continue;
    // Without the failed reply two user turns meet: one turn of both, for templates that need
    // user and assistant to alternate.
    const last = messages[messages.length - 1];
    if (m.role === 'user' && last?.role === 'user') last.content += `\n\n${m.content}`;
    else messages.push({ role: m.role, content: m.content });
  }
  const body = { messages, stream: true, stream_options: { include_usage: true }, ...(params ?? {}) };
  if (state.modelId) body.model = state.modelId;
  if (state.settings.showLogprobs) Object.assign(body, { logprobs: true, top_logprobs: 5 });
  return body;
}

async function generate(conversation) {
  const reply = { id: newId('m'), role: 'assistant', content: '', state: 'streaming' };
  const body = requestBody(conversation);
  conversation.messages.push(reply);
  conversation.updated = Date.now();
  const controller = new AbortController();
  state.busy = { conversation, reply, controller };
  persist();
  let saved = performance.now();
  const decode = tokenDecoder();  // one per reply: a character may span tokens
  renderConversationList();
  if (conversation === active()) {
    refreshAll();
    appendMessage(reply);
  }
  updateComposer();
  els.streamStatus.textContent = 'The assistant is replying…';

  const start = performance.now();
  let first = null, chunks = 0, usage = null;
  const stats = () => {
    const end = performance.now();
    const tokens = usage?.completion_tokens ?? Math.max(chunks, reply.lp?.length ?? 0);
    const out = { tokens };
    if (first !== null) {
      out.ttft = first - start;
      // The rate after the first token; when the reply came in one burst, the rate over the whole request.
      if (tokens > 1 && end - first >= 20) out.tps = ((tokens - 1) * 1000) / (end - first);
      else if (end > start) out.tps = (tokens * 1000) / (end - start);
    }
    return out;
  };
  const onChunk = (chunk) => {
    if (!chunk || typeof chunk !== 'object') return;
    if (chunk.usage && typeof chunk.usage === 'object') usage = chunk.usage;
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : null;
    if (!choice || typeof choice !== 'object') return;
    const text = choice.delta?.content;
    const tokens = choice.logprobs?.content;
    if ((typeof text === 'string' && text) || (Array.isArray(tokens) && tokens.length)) {
      if (first === null) first = performance.now();
      chunks++;
    }
    if (typeof text === 'string') reply.content += text;
    if (Array.isArray(tokens) && tokens.length) {
      reply.lp ??= [];
      for (const entry of tokens) reply.lp.push(decode(entry));
    }
    reply.stats = stats();
    scheduleRender(reply);
    if (performance.now() - saved >= 2000) {  // a crash or a closed tab keeps most of the reply
      saved = performance.now();
      persist();
    }
  };

  try {
    const { done } = await streamChat(body, { apiKey: state.settings.apiKey, signal: controller.signal, onChunk });
    reply.state = done ? 'done' : 'error';
    if (!done) {
      reply.error = 'The stream ended early: the connection closed before [DONE].';
      setStatus(reply.error, 'error');
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      reply.state = 'stopped';
    } else {
      reply.state = 'error';
      reply.error = String(e.message).slice(0, 2000);
      setStatus(e.message, 'error');
      if (e instanceof ApiError && e.status === 401) askForKey();
    }
  }
  reply.stats = stats();
  state.busy = null;
  conversation.updated = Date.now();
  persist();
  updateComposer();
  const s = formatStats(reply.stats);
  els.streamStatus.textContent = { done: `Reply finished: ${s.tokens}.`, stopped: 'Reply stopped.', error: 'The reply failed.' }[reply.state];
  if (conversation === active()) {
    state.pendingRender.delete(reply);
    followingBottom(refreshAll);
  }
  renderConversationList();
  if (document.activeElement === document.body || document.activeElement === els.stop) els.prompt.focus();
}

function stopStreaming() {
  state.busy?.controller.abort();
}

function autosize() {
  els.prompt.style.height = 'auto';
  els.prompt.style.height = `${Math.min(els.prompt.scrollHeight + 2, 240)}px`;
}

// ---------------------------------------------------------------- panels, server info, import

function setNav(open) {
  els.app.classList.toggle('nav-open', open);
  els.navToggle.setAttribute('aria-expanded', String(open));
  updateScrim();
}

function openSettings(focus) {
  els.settings.hidden = false;
  els.settingsToggle.setAttribute('aria-expanded', 'true');
  updateScrim();
  (focus ?? $('system-prompt')).focus();
}

function closeSettings() {
  els.settings.hidden = true;
  els.settingsToggle.setAttribute('aria-expanded', 'false');
  updateScrim();
}

function updateScrim() {
  els.scrim.hidden = !(els.app.classList.contains('nav-open') || !els.settings.hidden);
}

function askForKey() {
  const message = state.settings.apiKey ? 'The server refused this API key (401): check it.' : 'The server needs an API key (401): enter it here.';
  openSettings($('api-key'));
  flagApiKey(message);
  setStatus(message, 'error');
}

let infoRequest = 0;
async function loadServerInfo() {
  const request = ++infoRequest;
  const key = state.settings.apiKey;
  const [models, props] = await Promise.allSettled([getJson('/v1/models', key), getJson('/props', key)]);
  if (request !== infoRequest) return;
  const failed = [models, props].find((r) => r.status === 'rejected');
  const problem = failed ? `Model information unavailable: ${failed.reason.message}` : '';
  const modelsData = models.status === 'fulfilled' ? models.value : null;
  showServerInfo(modelsData, props.status === 'fulfilled' ? props.value : null, problem);
  state.modelId = typeof modelsData?.data?.[0]?.id === 'string' ? modelsData.data[0].id : null;
  if ([models, props].some((r) => r.status === 'rejected' && r.reason?.status === 401)) askForKey();
}

async function importFile(file) {
  try {
    if (file.size > MAX_IMPORT_BYTES) throw new Error('The file is larger than 20 MB.');
    const imported = parseImport(await file.text());
    state.conversations.push(...imported);
    persist();
    renderConversationList();
    setStatus(`Imported ${imported.length} conversation${imported.length === 1 ? '' : 's'}.`);
  } catch (e) {
    setStatus(e.message, 'error');
  }
}

// Esc closes what has focus (the tooltip closes itself in logprobs.js): an edit box, the settings
// panel, the conversation overlay; with focus in the composer, the messages or nowhere it stops the
// stream.
function onEscape(e) {
  if (e.key !== 'Escape' || e.defaultPrevented) return;
  const target = e.target instanceof Element ? e.target : document.body;
  const editing = target.closest('article.editing');
  if (editing) {
    cancelEditing(editing);
  } else if (!els.settings.hidden && els.settings.contains(target)) {
    closeSettings();
    els.settingsToggle.focus();
  } else if (els.app.classList.contains('nav-open') && $('conversations').contains(target)) {
    setNav(false);
    els.navToggle.focus();
  } else if (state.busy && (target === document.body || target === document.documentElement ||
                            target.closest('.composer') || els.messages.contains(target))) {
    stopStreaming();
  } else if (els.app.classList.contains('nav-open')) {
    setNav(false);  // the overlay, opened with focus left on its toggle
    els.navToggle.focus();
  } else {
    return;
  }
  e.preventDefault();
}

// ---------------------------------------------------------------- start

function init() {
  const { conversations, warning } = loadConversations();
  state.conversations = conversations;
  state.activeId = [...conversations].sort((a, b) => b.updated - a.updated)[0]?.id ?? null;
  if (warning) setStatus(warning, 'error');

  initSettings(state.settings, {
    save: () => { const problem = saveSettings(state.settings); if (problem) setStatus(problem, 'error'); },
    onApiKey: loadServerInfo,
  });

  els.list.addEventListener('click', onListClick);
  els.messages.addEventListener('click', onMessagesClick);
  els.search.addEventListener('input', () => { state.search = els.search.value.trim(); renderConversationList(); });
  $('new-chat').addEventListener('click', () => {
    const conversation = createConversation();
    persist();
    openConversation(conversation.id);
    els.prompt.focus();
  });
  $('export').addEventListener('click', () => {
    if (state.conversations.length === 0) { setStatus('There is nothing to export yet.'); return; }
    downloadJson(exportData(state.conversations), `ember-chats-${stamp()}.json`);
  });
  $('import').addEventListener('click', () => els.importFile.click());
  els.importFile.addEventListener('change', () => {
    const file = els.importFile.files?.[0];
    els.importFile.value = '';
    if (file) importFile(file);
  });

  els.send.addEventListener('click', send);
  els.stop.addEventListener('click', stopStreaming);
  els.prompt.addEventListener('input', autosize);
  els.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  document.addEventListener('keydown', onEscape);
  els.settingsToggle.addEventListener('click', () => (els.settings.hidden ? openSettings() : closeSettings()));
  $('settings-close').addEventListener('click', () => { closeSettings(); els.settingsToggle.focus(); });
  els.navToggle.addEventListener('click', () => setNav(!els.app.classList.contains('nav-open')));
  $('conversations-close').addEventListener('click', () => { setNav(false); els.navToggle.focus(); });
  els.scrim.addEventListener('click', () => { setNav(false); closeSettings(); });
  window.addEventListener('storage', (e) => {
    if (e.key === null || e.key === CHATS_KEY) syncFromStore(true);  // another tab changed them
  });
  window.addEventListener('pagehide', persist);

  renderConversationList();
  renderMessages();
  updateComposer();
  loadServerInfo();
  els.prompt.focus();
}

init();
