// `ember serve` through the official `openai` npm client: responses, streams, options and errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metrics, API_KEY } from './server.mjs';

// ember-tiny: a KJV-Bible model, 256-token context, ChatML fallback template. Prompts stay short.
const ALIAS = 'tiny-bible';
let server;
let client;

before(async () => {
  server = await startServer(['--api-key', API_KEY, '--parallel', '4', '--deterministic', '--alias', ALIAS]);
  // maxRetries 0: the client would otherwise retry 5xx and hide the 503 test's answer.
  client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 60_000 });
});
after(async () => { await server?.stop(); });

const chat = (content, extra = {}) => ({ model: ALIAS, messages: [{ role: 'user', content }], ...extra });
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}
// Concatenated delta text per choice index.
const streamedChat = (chunks) => chunks.flatMap((c) => c.choices).reduce((texts, ch) => {
  texts[ch.index] = (texts[ch.index] ?? '') + (ch.delta.content ?? '');
  return texts;
}, []);

test('chat: non-streaming response shape', async () => {
  const r = await client.chat.completions.create(chat('And God said', { max_tokens: 8, temperature: 0 }));
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, ALIAS);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const [c] = r.choices;
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.ok(c.message.content.length > 0);
  assert.ok(['length', 'stop'].includes(c.finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
});

test('chat: streaming chunks (role first, content deltas, one finish_reason) equal the non-streamed text', async () => {
  const req = chat('In the beginning', { max_tokens: 12, temperature: 0 });
  const whole = await client.chat.completions.create(req);
  const chunks = await collect(await client.chat.completions.create({ ...req, stream: true }));
  assert.ok(chunks.length >= 3);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
    assert.equal(c.model, ALIAS);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.slice(1).every((c) => c.choices[0].delta.role === undefined), 'role only in the first delta');
  const finishes = chunks.filter((c) => c.choices[0].finish_reason !== null);
  assert.equal(finishes.length, 1);
  assert.equal(finishes[0], chunks.at(-1));
  assert.equal(finishes[0].choices[0].finish_reason, whole.choices[0].finish_reason);
  assert.equal(streamedChat(chunks)[0], whole.choices[0].message.content);
});

test('completions: non-streaming and streaming give the same greedy text', async () => {
  const req = { model: ALIAS, prompt: 'And the LORD spake unto Moses', max_tokens: 10, temperature: 0 };
  const whole = await client.completions.create(req);
  assert.equal(whole.object, 'text_completion');
  assert.match(whole.id, /^cmpl-/);
  assert.equal(whole.choices[0].index, 0);
  assert.ok(whole.choices[0].text.length > 0);
  assert.ok(['length', 'stop'].includes(whole.choices[0].finish_reason));
  const chunks = await collect(await client.completions.create({ ...req, stream: true }));
  assert.ok(chunks.every((c) => c.object === 'text_completion' && c.id === chunks[0].id));
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), whole.choices[0].text);
  assert.equal(chunks.at(-1).choices[0].finish_reason, whole.choices[0].finish_reason);
});

test('n = 3: indexes 0..2, each with a finish_reason, streamed and not', async () => {
  const req = chat('And Jesus answered', { max_tokens: 6, n: 3, temperature: 0.9, seed: 7 });
  const r = await client.chat.completions.create(req);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) assert.ok(['length', 'stop'].includes(c.finish_reason));

  const chunks = await collect(await client.chat.completions.create({ ...req, stream: true }));
  for (const i of [0, 1, 2]) {
    const mine = chunks.flatMap((c) => c.choices).filter((ch) => ch.index === i);
    assert.equal(mine[0].delta.role, 'assistant', `choice ${i} starts with the role`);
    assert.equal(mine.filter((ch) => ch.finish_reason !== null).length, 1, `choice ${i} finishes once`);
    assert.notEqual(mine.at(-1).finish_reason, null, `choice ${i}: finish_reason last`);
  }
  // --deterministic and the same seed: the stream repeats the non-streamed choices.
  assert.deepEqual(streamedChat(chunks), r.choices.map((c) => c.message.content));
});

test('stop strings are excluded from the output and finish with "stop"', async () => {
  const req = { model: ALIAS, prompt: 'And God said, Let there be', max_tokens: 16, temperature: 0 };
  const full = (await client.completions.create(req)).choices[0].text;
  const stop = full.slice(4, 7); // a string the greedy text surely contains
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ ...req, stop: [stop, 'never-matches'] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  // Streamed: the held-back text before the match is not leaked either.
  const chunks = await collect(await client.completions.create({ ...req, stop, stream: true }));
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), expected);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('seed: the same seed repeats the text, other seeds vary it', async () => {
  const text = async (seed) => (await client.chat.completions.create(
    chat('And the king said', { max_tokens: 12, temperature: 0.8, seed }))).choices[0].message.content;
  assert.equal(await text(42), await text(42));
  // Several seeds, so one coincidence cannot fail the test.
  const texts = new Set(await Promise.all([1, 2, 3, 4, 5].map(text)));
  assert.ok(texts.size >= 2, `5 seeds gave ${texts.size} distinct texts`);
});

test('chat logprobs: one entry per token, top_logprobs sorted, bytes', async () => {
  const r = await client.chat.completions.create(
    chat('And Moses', { max_tokens: 6, temperature: 0.7, seed: 3, logprobs: true, top_logprobs: 3 }));
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.deepEqual(Buffer.from(t.bytes).toString('utf8'), t.token);
    assert.equal(t.top_logprobs.length, 3);
    for (let i = 1; i < 3; ++i) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
    assert.ok(t.top_logprobs[0].logprob >= t.logprob - 1e-6);
    for (const top of t.top_logprobs) assert.ok(Array.isArray(top.bytes) && top.bytes.every((b) => b >= 0 && b < 256));
  }
});

test('completions logprobs: tokens, token_logprobs, top_logprobs, text_offset', async () => {
  const prompt = 'And Abraham';
  const r = await client.completions.create({ model: ALIAS, prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.join(''), r.choices[0].text);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset[0], prompt.length); // OpenAI counts offsets from the prompt's start
  lp.tokens.forEach((tok, i) => {
    const best = Math.max(...Object.values(lp.top_logprobs[i]));
    assert.ok(best >= lp.token_logprobs[i] - 1e-6);
    assert.ok(Math.abs(best - lp.token_logprobs[i]) < 1e-6, 'greedy picks the top token');
    if (i > 0) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + lp.tokens[i - 1].length);
  });
});

test('completions: a batch of token-id prompts, echoed and scored (what evaluation harnesses send)', async () => {
  const ids = async (content) => (await (await fetch(`${server.url}/tokenize`, {
    method: 'POST', headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ prompt: content }),
  })).json()).tokens;
  const prompts = [await ids('And Abraham said'), await ids('In the beginning')];
  const r = await client.completions.create({
    model: ALIAS, prompt: prompts, max_tokens: 1, temperature: 0, logprobs: 1, echo: true, n: 2,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  r.choices.forEach((c) => {
    const prompt = prompts[Math.floor(c.index / 2)];
    const lp = c.logprobs;
    assert.equal(lp.token_logprobs.length, prompt.length + 1);
    assert.equal(lp.token_logprobs[0], null);
    assert.equal(lp.top_logprobs[0], null);
    lp.token_logprobs.slice(1).forEach((v) => assert.ok(v <= 0));
  });
  // Choices of one prompt share its scores; the two prompts' differ.
  assert.deepEqual(r.choices[0].logprobs.token_logprobs, r.choices[1].logprobs.token_logprobs);
  assert.notDeepEqual(r.choices[0].logprobs.token_logprobs, r.choices[2].logprobs.token_logprobs);
  assert.equal(r.usage.prompt_tokens, prompts[0].length + prompts[1].length);
});

test('stream_options.include_usage: a last chunk with choices [] and the usage', async () => {
  const chunks = await collect(await client.chat.completions.create(chat('And David', {
    max_tokens: 9, temperature: 0.5, seed: 11, logprobs: true, stream: true, stream_options: { include_usage: true },
  })));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage == null), 'usage only in the last chunk');
  // One logprobs entry per generated token.
  const tokens = chunks.flatMap((c) => c.choices).reduce((n, ch) => n + (ch.logprobs?.content?.length ?? 0), 0);
  assert.equal(last.usage.completion_tokens, tokens);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
});

test('prompt_tokens_details.cached_tokens > 0 for a second request sharing a long prefix', async () => {
  // ~90 tokens of system prompt shared by both requests (the cache keeps whole blocks).
  const system = 'Thou art a scribe of the house of Levi, numbering every tribe of Israel by their families, ' +
    'by the house of their fathers, according to the number of the names, from twenty years old and upward, ' +
    `all that are able to go forth to war in Israel. Record ${Date.now()}.`;
  const ask = (q) => client.chat.completions.create({
    model: ALIAS, max_tokens: 2, messages: [{ role: 'system', content: system }, { role: 'user', content: q }] });
  await ask('Judah?');
  const second = await ask('Benjamin?');
  const cached = second.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached > 0 && cached < second.usage.prompt_tokens, `cached ${cached} of ${second.usage.prompt_tokens}`);
});

test('embeddings: base64 (the client default) and float agree, unit norm, 384 wide', async () => {
  const input = ['In the beginning God created the heaven and the earth.', 'Jesus wept.'];
  const b64 = await client.embeddings.create({ model: ALIAS, input }); // the client asks for base64 and decodes
  const flt = await client.embeddings.create({ model: ALIAS, input, encoding_format: 'float' });
  assert.equal(b64.object, 'list');
  assert.ok(b64.usage.prompt_tokens > 0);
  for (const r of [b64, flt]) assert.deepEqual(r.data.map((d) => [d.object, d.index]), [['embedding', 0], ['embedding', 1]]);
  for (let i = 0; i < 2; ++i) {
    const a = b64.data[i].embedding;
    const b = flt.data[i].embedding;
    assert.equal(a.length, 384);
    assert.equal(b.length, 384);
    assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-4);
    a.forEach((x, j) => assert.ok(Math.abs(x - b[j]) < 1e-6, `dimension ${j}`));
  }
  assert.notDeepEqual(b64.data[0].embedding, b64.data[1].embedding);
});

test('models.list() shows the --alias', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.deepEqual(ids, [ALIAS]);
});

test('400 BadRequestError names the param', async () => {
  const bad = async (req) => {
    const e = await client.chat.completions.create(req).then(() => null, (err) => err);
    assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${e}`);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    return e;
  };
  assert.equal((await bad(chat('x', { temperature: 5 }))).param, 'temperature');
  // 256-token context: 1000 more tokens cannot fit.
  assert.equal((await bad(chat('x', { max_tokens: 1000 }))).param, 'max_tokens');
});

test('401 AuthenticationError for a wrong key', async () => {
  const wrong = new OpenAI({ baseURL: server.baseURL, apiKey: 'wrong-key', maxRetries: 0, timeout: 10_000 });
  await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test('raw HTTP: 404 for an unknown route, /health needs no key, /metrics', async () => {
  const auth = { authorization: `Bearer ${API_KEY}` };
  const notFound = await fetch(`${server.baseURL}/no-such-route`, { headers: auth });
  assert.equal(notFound.status, 404);
  assert.equal(typeof (await notFound.json()).error.message, 'string');
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  const { text } = await metrics(server);
  assert.match(text, /^ember_requests_total\{status="200"\} \d+$/m);
  assert.match(text, /^# TYPE ember_time_to_first_token_seconds histogram$/m);
  assert.match(text, /^ember_time_to_first_token_seconds_bucket\{le="\+Inf"\} \d+$/m);
  assert.match(text, /^ember_inter_token_latency_seconds_count \d+$/m);
});

// Polls /metrics until check(values) holds (10 s at most).
async function until(server, check) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { values } = await metrics(server);
    if (check(values)) return;
    assert.ok(Date.now() < deadline, `/metrics never reached ${check}: ${JSON.stringify(values)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// A server with one running slot; `queue` more requests may wait.
async function withBusyServer(queue, body) {
  // A 4096-token context (past ember-tiny's trained 256: the text does not matter here) lets the
  // first request run for seconds, not the fraction of one that 240 tokens take.
  const busy = await startServer(['--api-key', API_KEY, '--parallel', '1', '--max-queue', String(queue), '-c', '4096']);
  const c = new OpenAI({ baseURL: busy.baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
  // Deterministic: this request surely runs (it streamed a chunk) before the next ones come.
  // ignore_eos and up to 4000 tokens keep it running for the rest of the test (aborted at its end).
  let long;
  try {
    long = await c.completions.create(
      { model: 'x', prompt: 'And', max_tokens: 4000, ignore_eos: true, stream: true }).catch((e) => {
      throw new Error(`the first request, on an idle server, was refused: ${e}`);
    });
    await long[Symbol.asyncIterator]().next();
    // The engine publishes its counters once per step: wait until they show the long request
    // running, so that the next requests meet a settled state.
    await until(busy, (v) => v.ember_running_sequences === 1 && v.ember_queue_depth === 0);
    await body(busy, c, long);
  } finally {
    long?.controller.abort();
    await busy.stop();
  }
}
const rejection = (promise) => promise.then(() => assert.fail('expected a 503'), (e) => e);
function assert503(e) {
  assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
  assert.equal(e.status, 503);
  assert.match(e.headers.get('retry-after') ?? '', /^\d+$/);
  assert.equal(e.type, 'server_error');
}

test('503 with Retry-After when the queue is full (--parallel 1 --max-queue 0)', async () => {
  // The first request must run: --max-queue counts requests *waiting beyond the running ones*.
  await withBusyServer(0, async (busy, c) => {
    assert503(await rejection(c.completions.create({ model: 'x', prompt: 'And', max_tokens: 2 })));
  });
});

test('503 for a third request while one runs and one waits (--max-queue 1); the waiting one is served', async () => {
  await withBusyServer(1, async (busy, c, long) => {
    const waiting = c.completions.create({ model: 'x', prompt: 'And', max_tokens: 2 });
    waiting.catch(() => {}); // awaited below; no unhandled rejection if the test fails first
    // Wait until the second request is queued, so the third surely finds the queue full.
    await until(busy, (v) => v.ember_queue_depth === 1);
    assert503(await rejection(c.completions.create({ model: 'x', prompt: 'And', max_tokens: 2 })));
    long.controller.abort(); // the client goes away: its request is cancelled and the slot freed
    const served = await waiting;
    assert.equal(served.choices[0].finish_reason, 'length');
  });
});
