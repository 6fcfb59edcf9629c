// Conversations and settings in localStorage; strict validation of stored and imported data.
import { newId } from './util.js';

const CHATS_KEY = 'ember.chats.v1';
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

// Loads the stored conversations, skipping any that fail validation (a hand-edited or older store).
export function loadConversations() {
  let raw;
  try { raw = localStorage.getItem(CHATS_KEY); } catch { return { conversations: [], warning: 'Local storage is not available: conversations will not be kept.' }; }
  if (!raw) return { conversations: [] };
  try {
    const data = JSON.parse(raw);
    const conversations = [];
    let skipped = 0;
    for (const [i, c] of (Array.isArray(data.conversations) ? data.conversations : []).entries()) {
      try {
        const valid = validateConversation(c, `conversations[${i}]`);
        if (typeof c.id === 'string' && /^c[0-9a-f]{24}$/.test(c.id)) valid.id = c.id;
        conversations.push(valid);
      } catch {
        skipped++;
      }
    }
    return { conversations, warning: skipped ? `${skipped} stored conversation(s) could not be read and were skipped.` : '' };
  } catch {
    return { conversations: [], warning: 'The stored conversations could not be read.' };
  }
}

function serialize(conversations) {
  const stored = exportData(conversations).conversations;
  stored.forEach((c, i) => { c.id = conversations[i].id; });
  return JSON.stringify({ version: 1, conversations: stored });
}

// Saves every conversation. On a full store, drops the token probabilities of all replies but the
// newest and tries again. Returns '' or a message for the user.
export function saveConversations(conversations) {
  try {
    localStorage.setItem(CHATS_KEY, serialize(conversations));
    return '';
  } catch (e) {
    if (!isQuotaError(e)) return `Could not save the conversations: ${e.message}`;
  }
  const recent = [...conversations].sort((a, b) => b.updated - a.updated).find((c) => c.messages.some((m) => m.lp));
  const newest = recent?.messages.findLast((m) => m.lp);
  let dropped = 0;
  for (const c of conversations) {
    for (const m of c.messages) if (m.lp && m !== newest) { delete m.lp; dropped++; }
  }
  try {
    localStorage.setItem(CHATS_KEY, serialize(conversations));
    return dropped ? 'Browser storage is full: token probabilities of older replies were removed to make room.' : '';
  } catch (e) {
    return isQuotaError(e)
      ? 'Browser storage is full: the latest changes are not saved. Export and delete some conversations.'
      : `Could not save the conversations: ${e.message}`;
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
