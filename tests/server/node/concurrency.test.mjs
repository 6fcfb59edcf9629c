// 32 concurrent greedy streams equal each request alone; aborted streams leave the KV cache idle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metrics } from './server.mjs';

let server;
let client;

before(async () => {
  // --deterministic: a sequence's numbers do not depend on what else is in the batch.
  server = await startServer(['--deterministic', '--parallel', '8']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});
after(async () => { await server?.stop(); });

const SUBJECTS = ['LORD', 'king', 'prophet', 'priest', 'woman', 'people', 'angel', 'servant'];
const VERBS = ['said', 'went', 'answered', 'saw'];
// 32 distinct prompts; even ones go through chat, odd ones through completions.
const requests = Array.from({ length: 32 }, (_, i) => {
  const text = `And the ${SUBJECTS[i % 8]} ${VERBS[Math.floor(i / 8)]}`;
  return i % 2 === 0
    ? { kind: 'chat', body: { model: 'm', messages: [{ role: 'user', content: text }], max_tokens: 24, temperature: 0 } }
    : { kind: 'text', body: { model: 'm', prompt: text, max_tokens: 24, temperature: 0 } };
});

// Streams one request; returns its text and finish_reason.
async function run({ kind, body }, options = {}) {
  const api = kind === 'chat' ? client.chat.completions : client.completions;
  const stream = await api.create({ ...body, stream: true }, options);
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    text += (kind === 'chat' ? choice.delta.content : choice.text) ?? '';
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish };
}

let alone = [];
test('32 concurrent greedy streams give the same outputs as one at a time', async () => {
  for (const r of requests) alone.push(await run(r));
  assert.ok(alone.every((a) => a.text.length > 0 && a.finish !== null));
  assert.ok(new Set(alone.map((a) => a.text)).size > 16, 'distinct prompts give mostly distinct texts');

  const together = await Promise.all(requests.map((r) => run(r)));
  together.forEach((t, i) => assert.deepEqual(t, alone[i], `request ${i}: ${JSON.stringify(requests[i].body)}`));
});

test('aborting half of 16 streams mid-way frees every sequence and KV block', async () => {
  const generatedBefore = (await metrics(server)).values.ember_generated_tokens_total;
  const long = (i) => ({ kind: requests[i].kind, body: { ...requests[i].body, max_tokens: 80, ignore_eos: true } });
  const results = await Promise.allSettled(Array.from({ length: 16 }, async (_, i) => {
    if (i % 2 === 0) return run(long(i));
    // Odd ones disconnect after 2 + (i % 5) chunks, so the aborts are spread over the decode.
    const controller = new AbortController();
    const api = requests[i].kind === 'chat' ? client.chat.completions : client.completions;
    const stream = await api.create({ ...long(i).body, stream: true }, { signal: controller.signal });
    let chunks = 0;
    let finish = null;
    // After abort() the client's iterator just ends (openai-node swallows its own AbortError).
    for await (const chunk of stream) {
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (++chunks === 2 + (i % 5)) {
        controller.abort();
        break; // the iterator would still yield events already buffered
      }
    }
    return { chunks, finish };
  }));
  results.forEach((r, i) => {
    assert.equal(r.status, 'fulfilled', `stream ${i}: ${r.reason}`);
    if (i % 2 === 0) assert.equal(r.value.finish, 'length', `stream ${i}`);
    else assert.deepEqual(r.value, { chunks: 2 + (i % 5), finish: null }, `stream ${i} stops at the abort`);
  });

  // The server notices the disconnects on its next writes; give it a bounded time.
  const deadline = Date.now() + 20_000;
  let values;
  for (;;) {
    ({ values } = await metrics(server));
    if (values.ember_kv_blocks_used === 0 && values.ember_running_sequences === 0) break;
    assert.ok(Date.now() < deadline, `still busy after 20 s: ${JSON.stringify(values)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(values.ember_queue_depth, 0);
  // The aborted sequences were cancelled, not run to their 80 tokens (allow some lag per abort).
  const generated = values.ember_generated_tokens_total - generatedBefore;
  assert.ok(generated < 16 * 80, `${generated} tokens generated for 8 full and 8 aborted streams`);

  // Still serving, with the same greedy text as before.
  assert.deepEqual(await run(requests[0]), alone[0]);
});
