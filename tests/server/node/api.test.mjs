// Unit tests of the web UI's streaming client (src/server/ui/api.js): streamChat and its SSE parser against a mocked fetch.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { streamChat, SseParser, ApiError } from '../../../src/server/ui/api.js';

const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

const encoder = new TextEncoder();
const bytesOf = (part) => (typeof part === 'string' ? encoder.encode(part) : part);

// Makes fetch answer with `status` and a body the test feeds: `parts` (strings or bytes) are the
// reads, in order; `hold: true` leaves the stream open after them (for an abort). The stream errors
// with an AbortError when the request's signal aborts, as fetch's does. Returns the calls.
function mockFetch(parts, { status = 200, contentType = 'text/event-stream', hold = false } = {}) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    let controller;
    let i = 0;
    const body = new ReadableStream({
      start(c) { controller = c; },
      pull(c) {
        if (i < parts.length) c.enqueue(bytesOf(parts[i++]));
        else if (!hold) c.close();
        else return new Promise(() => {});  // a server that says nothing more
      },
    });
    init.signal?.addEventListener('abort', () => {
      try { controller.error(new DOMException('The operation was aborted.', 'AbortError')); } catch { /* closed */ }
    });
    return new Response(body, { status, headers: { 'Content-Type': contentType } });
  };
  return calls;
}

// Runs streamChat over `parts`; returns {chunks, result} or {chunks, error}.
async function run(parts, options = {}) {
  mockFetch(parts, options);
  const chunks = [];
  try {
    const result = await streamChat({ messages: [] }, { apiKey: options.apiKey, signal: options.signal, onChunk: (c) => chunks.push(c) });
    return { chunks, result };
  } catch (error) {
    return { chunks, error };
  }
}

const event = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
const delta = (content) => ({ choices: [{ index: 0, delta: { content } }] });
const texts = (chunks) => chunks.map((c) => c.choices[0].delta.content).join('');

test('a whole stream: chunks in order, [DONE], the request sent', async () => {
  const calls = mockFetch([event(delta('Hel')) + event(delta('lo')) + 'data: [DONE]\n\n']);
  const chunks = [];
  const result = await streamChat({ messages: [{ role: 'user', content: 'hi' }], stream: true },
                                  { apiKey: 'k1', onChunk: (c) => chunks.push(c) });
  assert.deepEqual(result, { done: true });
  assert.equal(texts(chunks), 'Hello');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, '/v1/chat/completions');
  assert.equal(calls[0].init.method, 'POST');
  assert.equal(calls[0].init.headers.Authorization, 'Bearer k1');
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(calls[0].init.body), { messages: [{ role: 'user', content: 'hi' }], stream: true });
});

test('events split across reads at every byte position, and one byte per read', async () => {
  const whole = encoder.encode(': ping\n\n' + event(delta('a—é')) + event(delta('🙂 b')) + 'data: [DONE]\n\n');
  for (let k = 0; k <= whole.length; k++) {
    const { chunks, result, error } = await run([whole.slice(0, k), whole.slice(k)]);
    assert.equal(error, undefined, `split at ${k}: ${error}`);
    assert.deepEqual(result, { done: true }, `split at ${k}`);
    assert.equal(texts(chunks), 'a—é🙂 b', `split at ${k}`);
  }
  const { chunks, result } = await run(Array.from(whole, (b) => new Uint8Array([b])));
  assert.deepEqual(result, { done: true });
  assert.equal(texts(chunks), 'a—é🙂 b');
});

test('a UTF-8 character split across reads', async () => {
  const bytes = encoder.encode(event(delta('€')));  // € is E2 82 AC
  const at = bytes.indexOf(0xe2);
  const { chunks } = await run([bytes.slice(0, at + 1), bytes.slice(at + 1, at + 2), bytes.slice(at + 2), 'data: [DONE]\n\n']);
  assert.equal(texts(chunks), '€');
});

test('CRLF, bare CR, "data:" without a space, multi-line data, comments and other fields', async () => {
  const crlf = `data: ${JSON.stringify(delta('a'))}\r\n\r\n`;
  const cr = `data: ${JSON.stringify(delta('b'))}\r\r`;
  const nospace = `data:${JSON.stringify(delta('c'))}\n\n`;
  const multi = `data: {"choices":[{"index":0,\ndata: "delta":{"content":"d"}}]}\n\n`;
  const noise = ': heartbeat\n: another\nevent: message\nid: 7\nretry: 100\n\n';
  // A CRLF split between reads is one line end, not two (which would end the event early).
  const { chunks, result, error } = await run([crlf, cr, nospace, noise, multi, 'data: {"choices":[{"index":0,"delta":{"content":"e"}}]}\r',
                                               '\n\r\n', 'data: [DONE]\r\n\r\n']);
  assert.equal(error, undefined);
  assert.deepEqual(result, { done: true });
  assert.equal(texts(chunks), 'abcde');
});

test('the SSE parser: data lines joined with newlines, "data" alone, an event at the end without its blank line', () => {
  const seen = [];
  const parser = new SseParser((payload) => { seen.push(payload); return payload === 'stop'; });
  assert.equal(parser.push('data: one\ndata:two\ndata\ndata:  three\n\n'), false);
  assert.deepEqual(seen, ['one\ntwo\n\n three']);
  assert.equal(parser.push('data: last'), false);
  assert.equal(parser.push('', true), false);
  assert.deepEqual(seen, ['one\ntwo\n\n three', 'last']);
  // It stops at the first event the callback accepts, and ignores what follows.
  const after = new SseParser((payload) => { seen.push(payload); return payload === 'stop'; });
  assert.equal(after.push('data: stop\n\ndata: ignored\n\n'), true);
  assert.equal(after.push('data: ignored too\n\n'), true);
  assert.deepEqual(seen.slice(-1), ['stop']);
  // A final bare CR ends its line.
  const cr = [];
  new SseParser((p) => { cr.push(p); }).push('data: x\r', true);
  assert.deepEqual(cr, ['x']);
});

test('a stream that ends without [DONE] resolves {done: false} after its events', async () => {
  const { chunks, result } = await run([event(delta('part')), `data: ${JSON.stringify(delta('ial'))}`]);
  assert.deepEqual(result, { done: false });
  assert.equal(texts(chunks), 'partial');
  const empty = await run([]);
  assert.deepEqual(empty.result, { done: false });
});

test('events after [DONE] are not read', async () => {
  const { chunks, result } = await run([event(delta('a')) + 'data: [DONE]\n\n' + event(delta('late'))]);
  assert.deepEqual(result, { done: true });
  assert.equal(texts(chunks), 'a');
});

test('an error object mid-stream throws ApiError with its message, after the chunks before it', async () => {
  const { chunks, error } = await run([event(delta('x')), event({ error: { message: 'context full', type: 'server_error' } }), event(delta('y'))]);
  assert.ok(error instanceof ApiError);
  assert.equal(error.message, 'context full');
  assert.equal(texts(chunks), 'x');
  const odd = await run([event({ error: { code: 5 } })]);
  assert.ok(odd.error instanceof ApiError);
  assert.match(odd.error.message, /"code":5/);
});

test('an unreadable event throws ApiError', async () => {
  const { error } = await run(['data: {not json\n\n']);
  assert.ok(error instanceof ApiError);
  assert.match(error.message, /unreadable event: \{not json/);
});

test('data: null and other non-objects are skipped', async () => {
  const { chunks, result, error } = await run(['data: null\n\n', 'data: 42\n\n', 'data: "text"\n\n', 'data: [1,2]\n\n',
                                               'data: true\n\n', event(delta('ok')), 'data: [DONE]\n\n']);
  assert.equal(error, undefined);
  assert.deepEqual(result, { done: true });
  assert.equal(chunks.length, 1);
  assert.equal(texts(chunks), 'ok');
});

test('HTTP errors: the JSON error message, else the body text, else the status text', async () => {
  const json = await run([JSON.stringify({ error: { message: 'Invalid API key', type: 'invalid_request_error' } })],
                         { status: 401, contentType: 'application/json' });
  assert.ok(json.error instanceof ApiError);
  assert.equal(json.error.status, 401);
  assert.equal(json.error.message, 'HTTP 401: Invalid API key');

  const text = await run(['  upstream exploded  '], { status: 500, contentType: 'text/plain' });
  assert.equal(text.error.status, 500);
  assert.equal(text.error.message, 'HTTP 500: upstream exploded');

  const html = await run(['<html>bad gateway</html>'], { status: 502, contentType: 'text/html' });
  assert.equal(html.error.message, 'HTTP 502: <html>bad gateway</html>');

  const empty = await run([], { status: 500 });
  assert.equal(empty.error.status, 500);
  assert.match(empty.error.message, /^HTTP 500: \S/);

  const notString = await run([JSON.stringify({ error: { message: { nested: true } } })], { status: 400 });
  assert.match(notString.error.message, /^HTTP 400: \{"error"/);
});

test('an unreachable server throws ApiError', async () => {
  globalThis.fetch = async () => { throw new TypeError('Failed to fetch'); };
  await assert.rejects(streamChat({}, { onChunk() {} }), (e) => e instanceof ApiError && /Cannot reach the server \(Failed to fetch\)/.test(e.message));
});

test('an abort mid-stream rejects with AbortError, keeping the chunks before it', async () => {
  const controller = new AbortController();
  mockFetch([event(delta('one'))], { hold: true });
  const chunks = [];
  const pending = streamChat({}, {
    signal: controller.signal,
    onChunk: (c) => { chunks.push(c); setTimeout(() => controller.abort(), 5); },
  });
  await assert.rejects(pending, (e) => e.name === 'AbortError');
  assert.equal(texts(chunks), 'one');
});

test('an abort before the response rejects with AbortError', async () => {
  const controller = new AbortController();
  controller.abort();
  mockFetch([event(delta('never'))]);
  await assert.rejects(streamChat({}, { signal: controller.signal, onChunk() {} }), (e) => e.name === 'AbortError');
});

test('an abort while the error body is read ends as an abort, not an error', async () => {
  const controller = new AbortController();
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push(url);
    let stream;
    const body = new ReadableStream({
      start(c) { stream = c; c.enqueue(encoder.encode('{"error": {"mess')); },
      pull() { return new Promise(() => {}); },
    });
    init.signal.addEventListener('abort', () => stream.error(new DOMException('aborted', 'AbortError')));
    setTimeout(() => controller.abort(), 5);
    return new Response(body, { status: 500 });
  };
  await assert.rejects(streamChat({}, { signal: controller.signal, onChunk() {} }), (e) => e.name === 'AbortError');
  assert.equal(calls.length, 1);
});
