// Unit tests of the web UI's storage (src/server/ui/store.js) against a fake localStorage: merging with other tabs, a full store, an unreadable store.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const data = new Map();
let limit = Infinity;  // the longest value setItem takes
globalThis.localStorage = {
  getItem: (k) => (data.has(k) ? data.get(k) : null),
  setItem: (k, v) => { if (String(v).length > limit) throw new DOMException('full', 'QuotaExceededError'); data.set(k, String(v)); },
};
// Each import URL is its own module instance: one per browser tab.
const tab = (name) => import(new URL(`../../../src/server/ui/store.js?${name}`, import.meta.url).href);
const conv = (id, title, updated) => ({ id, title, created: 1, updated, messages: [{ id: 'm1', role: 'user', content: title }] });
const id = (n) => 'c' + String(n).padStart(24, '0');
const stored = (key) => JSON.parse(data.get(key)).conversations;

test('tabs merge by id: nothing another tab saved is lost, deletions stay deleted', async () => {
  data.clear();
  const A = await tab('a1'), B = await tab('b1');
  let a = A.loadConversations().conversations, b = B.loadConversations().conversations;
  a.push(conv(id(1), 'one', 10));
  a = A.mergeStored(a).conversations;
  A.saveConversations(a);
  let r = B.mergeStored(b);
  b = r.conversations;
  assert.ok(r.changed);
  assert.deepEqual(b.map((c) => c.title), ['one']);
  b.push(conv(id(2), 'two', 20));
  B.saveConversations(b);
  // A streams into "one" (pinned, its copy wins) and saves: B's "two" is kept, the reply stored as stopped.
  a[0].messages.push({ id: 'm2', role: 'assistant', content: 'reply', state: 'streaming' });
  r = A.mergeStored(a, { pinned: id(1) });
  a = r.conversations;
  assert.ok(r.changed);
  A.saveConversations(a);
  assert.deepEqual(stored(A.CHATS_KEY).map((c) => c.title).sort(), ['one', 'two']);
  assert.equal(stored(A.CHATS_KEY).find((c) => c.title === 'one').messages[1].state, 'stopped');
  // B deletes "two": A, which had it, drops it on its next merge.
  B.forgetConversation(id(2));
  b = B.mergeStored(b.filter((c) => c.id !== id(2))).conversations;
  B.saveConversations(b);
  a = A.mergeStored(a).conversations;
  assert.deepEqual(a.map((c) => c.title), ['one']);
  // A deletes "one": B drops it too, and A does not take it back from a store B wrote before.
  A.forgetConversation(id(1));
  a = [];
  A.saveConversations(a);
  b = B.mergeStored(b).conversations;
  assert.equal(b.length, 0);
  b.push(conv(id(3), 'three', 30));
  B.saveConversations(b);
  a = A.mergeStored(a).conversations;
  assert.deepEqual(a.map((c) => c.title), ['three']);
  // On equal `updated` (a rename) this tab's copy wins when it saves, the stored one on a storage
  // event (preferStored); a newer `updated` always wins.
  b[0].title = 'renamed';
  B.saveConversations(b);
  const raw = data.get(A.CHATS_KEY);
  assert.equal(A.mergeStored(a).conversations[0].title, 'three');
  data.set(A.CHATS_KEY, raw + ' ');  // the same conversations, stored again
  assert.equal(A.mergeStored(a, { preferStored: true }).conversations[0].title, 'renamed');
  b[0].title = 'newer';
  b[0].updated = 31;
  B.saveConversations(b);
  assert.equal(A.mergeStored(a).conversations[0].title, 'newer');
});

test('a full store saves a copy without older token probabilities; memory keeps them', async () => {
  data.clear();
  const A = await tab('a2');
  A.loadConversations();
  const lp = Array.from({ length: 2000 }, () => ['tok', 0.5, [['x', 0.1]]]);
  const a = [conv(id(4), 'four', 40), conv(id(5), 'five', 50)];
  a[0].messages.push({ id: 'm', role: 'assistant', content: 'r', state: 'done', lp: lp.slice() });
  a[1].messages.push({ id: 'n', role: 'assistant', content: 'r', state: 'done', lp: lp.slice() });
  limit = JSON.stringify(lp).length * 1.5;
  try {
    const res = A.saveConversations(a);
    assert.match(res.problem, /were not saved/);
    assert.equal(a[0].messages[1].lp.length, 2000);
    assert.equal(stored(A.CHATS_KEY).find((c) => c.title === 'four').messages[1].lp, undefined);
    assert.equal(stored(A.CHATS_KEY).find((c) => c.title === 'five').messages[1].lp.length, 2000);
    limit = 10;
    assert.match(A.saveConversations(a).problem, /the latest changes are not saved/);
    assert.equal(a[0].messages[1].lp.length, 2000);
  } finally {
    limit = Infinity;
  }
});

test('an unreadable store is copied aside once before it is first overwritten', async () => {
  for (const raw of ['{"version":1,"conversations":[{"title":5}]}', '{not json']) {
    data.clear();
    const C = await tab(`c${raw.length}`);
    data.set(C.CHATS_KEY, raw);
    const loaded = C.loadConversations();
    assert.match(loaded.warning, /could not be read/);
    let res = C.saveConversations(loaded.conversations);
    const backups = [...data.keys()].filter((k) => k.startsWith(`${C.CHATS_KEY}.unreadable-`));
    assert.equal(backups.length, 1);
    assert.equal(data.get(backups[0]), raw);
    assert.match(res.notice, /unreadable-/);
    res = C.saveConversations([]);
    assert.equal(res.notice, '');
    assert.equal([...data.keys()].filter((k) => k.startsWith(`${C.CHATS_KEY}.unreadable-`)).length, 1);
  }
  // When the copy does not fit, nothing is written over the unreadable value.
  data.clear();
  const D = await tab('d');
  data.set(D.CHATS_KEY, '{broken');
  D.loadConversations();
  limit = 3;
  try {
    assert.match(D.saveConversations([conv(id(6), 'six', 1)]).problem, /could not be copied aside/);
    assert.equal(data.get(D.CHATS_KEY), '{broken');
  } finally {
    limit = Infinity;
  }
});

test('stored logprobs in the compact format load back', async () => {
  data.clear();
  const E = await tab('e');
  data.set(E.CHATS_KEY, JSON.stringify({ version: 1, conversations: [{ id: id(7), title: 't', created: 1, updated: 2, messages: [
    { role: 'user', content: 'q' }, { role: 'assistant', content: 'a', state: 'done', lp: [['a', 0.9, [['b', 0.05]]], ['‹E2›', 0.5, []]] }] }] }));
  const { conversations, warning } = E.loadConversations();
  assert.equal(warning, '');
  assert.deepEqual(conversations[0].messages[1].lp, [['a', 0.9, [['b', 0.05]]], ['‹E2›', 0.5, []]]);
});
