// Structured output through `ember serve`: the openai client's response_format (json_schema with
// chat.completions.parse, json_object, streamed), the grammar / regex extensions, n > 1, and the
// 400s for constraints that cannot be compiled or come two at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, API_KEY } from './server.mjs';

// ember-tiny knows only KJV text, so every bit of JSON here comes from the constraint. Its trained
// context is 256 tokens; -c 1024 leaves room for max_tokens 400 (the schema's bounded whitespace
// and lengths end it long before).
const ALIAS = 'tiny-bible';
let server;
let client;

before(async () => {
  server = await startServer(['--api-key', API_KEY, '--parallel', '4', '--alias', ALIAS, '-c', '1024']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 120_000 });
});
after(async () => { await server?.stop(); });

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 20 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};
const personFormat = (schema = PERSON) =>
  ({ type: 'json_schema', json_schema: { name: 'person', strict: true, schema } });
const chat = (extra = {}) => ({
  model: ALIAS, messages: [{ role: 'user', content: 'Who was the son of Abraham?' }],
  temperature: 1, max_tokens: 400, ...extra,
});

// PERSON by hand: exactly name then age (schema order, no other keys), their types and bounds.
function assertPerson(value, context) {
  const why = `${context}: ${JSON.stringify(value)}`;
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `an object: ${why}`);
  assert.deepEqual(Object.keys(value), ['name', 'age'], `keys in schema order: ${why}`);
  assert.equal(typeof value.name, 'string', why);
  assert.ok([...value.name].length <= 20, `maxLength 20 (code points): ${why}`);
  assert.ok(Number.isInteger(value.age) && value.age >= 0 && value.age <= 150, `age an integer in 0..150: ${why}`);
}

// POST to the server (path from its root) with plain fetch: the extensions are not the client's.
async function post(path, body) {
  const r = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  return { status: r.status, body: await r.json() };
}

const rejection = (promise) => promise.then(() => assert.fail('expected an error'), (e) => e);
function assertBadRequest(e, param, says) {
  assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${e}`);
  assert.equal(e.status, 400);
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.param, param);
  assert.ok(e.message.includes(says), `"${e.message}" should mention ${says}`);
}

test('chat.completions.parse with a strict json_schema: a valid person, finish_reason stop, on every seed', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = await client.chat.completions.parse(chat({ response_format: personFormat(), seed }));
    const [c] = r.choices;
    assert.equal(c.finish_reason, 'stop', `seed ${seed}: ${c.message.content}`);
    assertPerson(c.message.parsed, `seed ${seed}`);
    assert.deepEqual(JSON.parse(c.message.content), c.message.parsed);
  }
});

// The token whose piece is exactly `piece` (ember-tiny has one for '"' and '}'; the tokenizer puts
// a space before the text, a token of its own).
async function tokenOf(piece) {
  const { status, body } = await post('/tokenize', { content: piece, with_pieces: true });
  assert.equal(status, 200);
  const token = body.tokens.find((t) => t.piece === piece);
  assert.ok(token, `a token for ${piece}: ${JSON.stringify(body)}`);
  return token.id;
}

test('response_format json_object: the content is a JSON object', async () => {
  // Any object may hold strings of any length, and a model that never saw a quote never closes
  // one: a logit bias on '"' and '}' makes strings and objects end, as a model trained on JSON would.
  const logit_bias = { [await tokenOf('"')]: 15, [await tokenOf('}')]: 10 };
  for (const seed of [1, 2, 3, 4]) {
    const r = await client.chat.completions.create(
      chat({ response_format: { type: 'json_object' }, logit_bias, seed }));
    const [c] = r.choices;
    assert.equal(c.finish_reason, 'stop', `seed ${seed}: ${c.message.content}`);
    const value = JSON.parse(c.message.content);
    assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), c.message.content);
  }
});

test('streamed with a json_schema: the concatenated deltas are a valid person', async () => {
  const stream = await client.chat.completions.create(
    chat({ response_format: personFormat(), seed: 11, stream: true }));
  let content = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      content += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
  }
  assert.equal(finish, 'stop', content);
  assertPerson(JSON.parse(content), 'streamed');
});

test('n = 3 with a json_schema: every choice is a valid person', async () => {
  const r = await client.chat.completions.parse(chat({ response_format: personFormat(), n: 3, seed: 21 }));
  assert.equal(r.choices.length, 3);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop', `choice ${c.index}: ${c.message.content}`);
    assertPerson(c.message.parsed, `choice ${c.index}`);
  }
});

test('grammar extension on /v1/completions: the text is exactly yes or no', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const { status, body } = await post('/v1/completions', {
      model: ALIAS, prompt: 'And he answered', max_tokens: 20, temperature: 1, seed,
      grammar: 'root ::= ("yes" | "no")',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(['yes', 'no'].includes(body.choices[0].text), JSON.stringify(body.choices[0].text));
    assert.equal(body.choices[0].finish_reason, 'stop');
  }
});

test('regex extension on /v1/completions and /v1/chat/completions: the text matches', async () => {
  for (const seed of [1, 2, 3]) {
    const { status, body } = await post('/v1/completions', {
      model: ALIAS, prompt: 'And the number was', max_tokens: 20, temperature: 1, seed, regex: '[0-9]{3}-[0-9]{4}',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(body.choices[0].text, /^[0-9]{3}-[0-9]{4}$/);
    assert.equal(body.choices[0].finish_reason, 'stop');
  }
  const { status, body } = await post('/v1/chat/completions', chat({ regex: '(Isaac|Ishmael)!', seed: 3 }));
  assert.equal(status, 200, JSON.stringify(body));
  assert.match(body.choices[0].message.content, /^(Isaac|Ishmael)!$/);
});

test('400: a schema keyword that cannot be enforced names response_format and the keyword', async () => {
  const schema = {
    ...PERSON,
    properties: { ...PERSON.properties, tags: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
    required: [...PERSON.required, 'tags'],  // strict mode requires every property
  };
  const e = await rejection(client.chat.completions.create(chat({ response_format: personFormat(schema) })));
  assertBadRequest(e, 'response_format', 'uniqueItems');
  assert.ok(e.message.includes("response_format 'person'"), e.message);
});

test('400: a bad response_format shape names the field', async () => {
  const e = await rejection(client.chat.completions.create(
    chat({ response_format: { type: 'json_schema', json_schema: { name: 'a person', schema: PERSON } } })));
  assertBadRequest(e, 'response_format.json_schema.name', 'a-z');
});

test('400: bad GBNF gives its line and column', async () => {
  const { status, body } = await post('/v1/completions',
    { model: ALIAS, prompt: 'And', max_tokens: 4, grammar: 'root ::= ("yes" | "no"' });
  assert.equal(status, 400, JSON.stringify(body));
  assert.equal(body.error.type, 'invalid_request_error');
  assert.equal(body.error.param, 'grammar');
  assert.match(body.error.message, /grammar:1:\d+: /);
});

test('400: two constraints at once', async () => {
  const e = await rejection(client.chat.completions.create(
    chat({ response_format: { type: 'json_object' }, grammar: 'root ::= "{}"' })));
  assertBadRequest(e, 'grammar', "'response_format' and 'grammar'");
  const { status, body } = await post('/v1/completions',
    { model: ALIAS, prompt: 'And', grammar: 'root ::= "a"', regex: 'a' });
  assert.equal(status, 400, JSON.stringify(body));
  assert.equal(body.error.param, 'regex');
});
