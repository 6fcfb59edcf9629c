// Conversations and settings in localStorage; strict validation of stored and imported data.
import { newId } from './util.js';

export const CHATS_KEY = 'ember.chats.v1';
const SETTINGS_KEY = 'ember.settings.v1';
export const EXPORT_FORMAT = 'ember-chat';
export const MAX_IMPORT_BYTES = 20 * 1024 * 1024;

// Generous bounds (an import is at most 20 MB, localStorage about 5 MB); they stop absurd files early.
const LIMITS = { conversations: 10_000, messages: 20_000, content: 5_000_000, title: 300, tokens: 500_000, alternatives: 20, token: 512, error: 2000 };
const ROLES = new Set(['user', 'assistant']);
const STATES = new Set(['done', 'stopped', 'error']);

export const DEFAULT_SETTINGS = {
  systemPrompt: '', temperature: '', topP: '', topK: '', minP: '', maxTokens: '', seed: '',
  showLogprobs: false, apiKey: '', theme: 'auto',
};

// ---------------------------------------------------------------- validation

class ImportError extends Error {}
const fail = (path, what) => { throw new ImportError(`${path} ${what}`); };
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

function string(v, path, max, { optional = false } = {}) {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') fail(path, 'must be a string');
  if (v.length > max) fail(path, `is longer than ${max} characters`);
  return v;
}

function number(v, path, min, max) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(path, `must be a number from ${min} to ${max}`);
  return v;
}

function array(v, path, max) {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  if (v.length > max) fail(path, `has more than ${max} entries`);
  return v;
}

// Compact logprobs: [[token, p, [[alternative, p], ...]], ...] with p a probability in 0..1.
function validateLogprobs(v, path) {
  return array(v, path, LIMITS.tokens).map((t, i) => {
    const at = `${path}[${i}]`;
    array(t, at, 3);
    if (t.length !== 3) fail(at, 'must be [token, probability, alternatives]');
    const alts = array(t[2], `${at}[2]`, LIMITS.alternatives).map((a, k) => {
      array(a, `${at}[2][${k}]`, 2);
      return [string(a[0], `${at}[2][${k}][0]`, LIMITS.token), number(a[1], `${at}[2][${k}][1]`, 0, 1)];
    });
    return [string(t[0], `${at}[0]`, LIMITS.token), number(t[1], `${at}[1]`, 0, 1), alts];
  });
}

function validateStats(v, path) {
  if (!isObject(v)) fail(path, 'must be an object');
  const stats = {};
  for (const key of ['tokens', 'tps', 'ttft']) {
    if (v[key] !== undefined && v[key] !== null) stats[key] = number(v[key], `${path}.${key}`, 0, 1e9);
  }
  return stats;
}

function validateMessage(v, path) {
  if (!isObject(v)) fail(path, 'must be an object');
  if (!ROLES.has(v.role)) fail(`${path}.role`, "must be 'user' or 'assistant'");
  const message = { id: newId('m'), role: v.role, content: string(v.content, `${path}.content`, LIMITS.content) };
  if (v.role === 'assistant') {
    message.state = v.state === undefined ? 'done' : v.state;
    if (!STATES.has(message.state)) fail(`${path}.state`, "must be 'done', 'stopped' or 'error'");
    if (v.error !== undefined) message.error = string(v.error, `${path}.error`, LIMITS.error);
    if (v.stats !== undefined) message.stats = validateStats(v.stats, `${path}.stats`);
    if (v.lp !== undefined) message.lp = validateLogprobs(v.lp, `${path}.lp`);
  }
  return message;
}

function validateConversation(v, path) {
  if (!isObject(v)) fail(path, 'must be an object');
  const now = Date.now();
  const time = (t, key) => (t === undefined ? now : number(t, `${path}.${key}`, 0, 8.64e15));
  return {
    id: newId('c'),
    title: string(v.title, `${path}.title`, LIMITS.title).trim() || 'Untitled',
    created: time(v.created, 'created'),
    updated: time(v.updated, 'updated'),
    messages: array(v.messages, `${path}.messages`, LIMITS.messages).map((m, i) => validateMessage(m, `${path}.messages[${i}]`)),
  };
}

// Parses an exported file (ours: {format, version, conversations}; or one conversation object).
// Returns fresh conversations; throws an Error whose message says what is wrong.
export function parseImport(text) {
  if (typeof text !== 'string' || text.length > MAX_IMPORT_BYTES) throw new Error('The file is larger than 20 MB.');
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`The file is not valid JSON (${e.message}).`);
  }
  try {
    if (isObject(data) && data.format === EXPORT_FORMAT) {
      if (data.version !== 1) fail('version', 'must be 1');
      return array(data.conversations, 'conversations', LIMITS.conversations).map((c, i) => validateConversation(c, `conversations[${i}]`));
    }
    if (isObject(data) && Array.isArray(data.messages)) return [validateConversation(data, 'conversation')];
    throw new ImportError(`not an ember chat export (expected "format": "${EXPORT_FORMAT}")`);
  } catch (e) {
    if (e instanceof ImportError) throw new Error(`The file was not imported: ${e.message}.`);
    throw e;
  }
}

// What an export holds: only the fields the app reads back.
export function exportData(conversations) {
  return {
    format: EXPORT_FORMAT, version: 1, exported: new Date().toISOString(),
    conversations: conversations.map((c) => ({
      title: c.title, created: c.created, updated: c.updated,
      messages: c.messages.map((m) => {
        const out = { role: m.role, content: m.content };
        if (m.role === 'assistant') {
          out.state = m.state === 'streaming' ? 'stopped' : m.state ?? 'done';
          for (const key of ['error', 'stats', 'lp']) if (m[key] !== undefined) out[key] = m[key];
        }
        return out;
      }),
    })),
  };
}

// ---------------------------------------------------------------- localStorage

const isQuotaError = (e) => e instanceof DOMException && (e.name === 'QuotaExceededError' || e.code === 22 || e.code === 1014);

// What this tab knows of the stored value: the text it last read or wrote (no merge needed while
// the store still holds it), the ids it held, the ids this tab deleted since, and an unreadable
// value to copy aside before the first write over it.
const sync = { raw: null, ids: new Set(), deleted: new Set(), unreadable: null, copied: false };

// Parses the stored value: {conversations, skipped, broken} (broken: not our JSON at all).
function readStored(raw) {
  if (!raw) return { conversations: [], skipped: 0, broken: false };
  let data;
  try { data = JSON.parse(raw); } catch { return { conversations: [], skipped: 0, broken: true }; }
  if (!isObject(data) || !Array.isArray(data.conversations)) return { conversations: [], skipped: 0, broken: true };
  const conversations = [];
  let skipped = 0;
  for (const [i, c] of data.conversations.entries()) {
    try {
      const valid = validateConversation(c, `conversations[${i}]`);
      if (typeof c.id === 'string' && /^c[0-9a-f]{24}$/.test(c.id)) valid.id = c.id;
      conversations.push(valid);
    } catch {
      skipped++;
    }
  }
  return { conversations, skipped, broken: false };
}

// Remembers a value that did not read back whole, to copy it aside before it is overwritten.
function noteUnreadable(raw, { skipped, broken }) {
  if ((broken || skipped) && !sync.copied && sync.unreadable === null) sync.unreadable = raw;
}

// Loads the stored conversations, skipping any that fail validation (a hand-edited or older store).
export function loadConversations() {
  let raw;
  try { raw = localStorage.getItem(CHATS_KEY); } catch { return { conversations: [], warning: 'Local storage is not available: conversations will not be kept.' }; }
  const read = readStored(raw);
  noteUnreadable(raw, read);
  sync.raw = raw;
  sync.ids = new Set(read.conversations.map((c) => c.id));
  let warning = '';
  if (read.broken) warning = 'The stored conversations could not be read.';
  else if (read.skipped) warning = `${read.skipped} stored conversation(s) could not be read and were skipped.`;
  if (warning) warning += ' A copy of them is kept in this browser before anything is saved.';
  return { conversations: read.conversations, warning };
}

// Notes that this tab deleted a conversation, so that a merge does not bring it back.
export function forgetConversation(id) {
  sync.deleted.add(id);
}

// Whether two copies of a conversation show the same: title, and each message's role, text and state.
function sameText(a, b) {
  const state = (m) => (m.role === 'assistant' ? (m.state === 'streaming' ? 'stopped' : m.state ?? 'done') : '');
  return a.title === b.title && a.messages.length === b.messages.length && a.messages.every((m, i) => {
    const n = b.messages[i];
    return m.role === n.role && m.content === n.content && state(m) === state(n) && (m.error ?? '') === (n.error ?? '');
  });
}

// Merges in what another tab stored since this tab last read or wrote: a stored conversation this
// tab does not have is added (unless this tab deleted it); one that is newer (`updated`) replaces
// this tab's copy; one this tab had read but the store no longer holds was deleted elsewhere and
// goes. `pinned` (the id of the conversation streaming here) always keeps this tab's copy; on equal
// `updated`, this tab's copy wins unless `preferStored` (a rename does not change `updated`).
// Returns {conversations, changed}; `conversations` keeps this tab's objects where they win.
export function mergeStored(conversations, { pinned = null, preferStored = false } = {}) {
  let raw;
  try { raw = localStorage.getItem(CHATS_KEY); } catch { return { conversations, changed: false }; }
  if (raw === sync.raw) return { conversations, changed: false };
  const read = readStored(raw);
  noteUnreadable(raw, read);
  const stored = new Map(read.conversations.map((c) => [c.id, c]));
  let changed = false;
  const merged = [];
  for (const c of conversations) {
    const theirs = stored.get(c.id);
    stored.delete(c.id);
    if (c.id === pinned) merged.push(c);
    else if (theirs === undefined && sync.ids.has(c.id) && !read.broken && !read.skipped) changed = true;  // deleted elsewhere
    else if (theirs !== undefined && (theirs.updated > c.updated || (preferStored && theirs.updated === c.updated && !sameText(c, theirs)))) {
      merged.push(theirs);
      changed = true;
    } else merged.push(c);
  }
  for (const c of stored.values()) {
    if (sync.deleted.has(c.id)) continue;
    merged.push(c);
    changed = true;
  }
  sync.raw = raw;
  sync.ids = new Set(read.conversations.map((c) => c.id));
  return { conversations: merged, changed };
}

// Stored form; `keepLp` (a message) limits token probabilities to that one reply.
function serialize(conversations, keepLp = undefined) {
  const stored = exportData(conversations).conversations;
  stored.forEach((c, i) => {
    c.id = conversations[i].id;
    if (keepLp === undefined) return;
    c.messages.forEach((m, k) => { if (m.lp && conversations[i].messages[k] !== keepLp) delete m.lp; });
  });
  return JSON.stringify({ version: 1, conversations: stored });
}

function write(conversations, text) {
  localStorage.setItem(CHATS_KEY, text);
  sync.raw = text;
  sync.ids = new Set(conversations.map((c) => c.id));
}

// Before the first write over a value that did not read back whole: copies it to
// "<key>.unreadable-<time>", once. Returns {ok, notice}.
function copyUnreadable() {
  if (sync.unreadable === null) return { ok: true, notice: '' };
  const key = `${CHATS_KEY}.unreadable-${Date.now()}`;
  try {
    localStorage.setItem(key, sync.unreadable);
  } catch (e) {
    return { ok: false, notice: `The unreadable stored conversations could not be copied aside (${e.message}), so nothing is saved over them. Free some browser storage, or export and clear it.` };
  }
  sync.unreadable = null;
  sync.copied = true;
  return { ok: true, notice: `The stored conversations that could not be read were kept in localStorage as "${key}".` };
}

// Saves every conversation (call mergeStored first). On a full store, saves a copy without the token
// probabilities of all replies but the newest; the conversations in memory are never changed.
// Returns {problem, notice}: an error message or '', and a message for the user or ''.
export function saveConversations(conversations) {
  const copied = copyUnreadable();
  if (!copied.ok) return { problem: copied.notice, notice: '' };
  const { notice } = copied;
  try {
    write(conversations, serialize(conversations));
    return { problem: '', notice };
  } catch (e) {
    if (!isQuotaError(e)) return { problem: `Could not save the conversations: ${e.message}`, notice };
  }
  const recent = [...conversations].sort((a, b) => b.updated - a.updated).find((c) => c.messages.some((m) => m.lp));
  const newest = recent?.messages.findLast((m) => m.lp) ?? null;
  try {
    write(conversations, serialize(conversations, newest));
    const dropped = conversations.some((c) => c.messages.some((m) => m.lp && m !== newest));
    return { problem: dropped ? 'Browser storage is full: the token probabilities of older replies were not saved (they stay until the page is closed).' : '', notice };
  } catch (e) {
    return {
      problem: isQuotaError(e)
        ? 'Browser storage is full: the latest changes are not saved. Export and delete some conversations.'
        : `Could not save the conversations: ${e.message}`,
      notice,
    };
  }
}

export function loadSettings() {
  try {
    const data = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}');
    const settings = { ...DEFAULT_SETTINGS };
    for (const [key, value] of Object.entries(DEFAULT_SETTINGS)) {
      if (isObject(data) && typeof data[key] === typeof value) settings[key] = data[key];
    }
    if (!['auto', 'light', 'dark'].includes(settings.theme)) settings.theme = 'auto';
    return settings;
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

export function saveSettings(settings) {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
    return '';
  } catch (e) {
    return isQuotaError(e) ? 'Browser storage is full: settings are not saved.' : `Could not save the settings: ${e.message}`;
  }
}
