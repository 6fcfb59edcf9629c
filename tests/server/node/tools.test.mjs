// Tool calling through `ember serve` and the openai client: tool_choice required / named / auto,
// streamed deltas, parallel_tool_calls, a tool result sent back, and the 400s. ember-tiny knows only
// KJV text, so every call here is the Hermes grammar's doing: the server runs with Qwen 2.5's chat
// template (from ../shared/data, skipped when it is absent), whose "<tool_call>" syntax it detects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServer, API_KEY } from './server.mjs';

const sourceDir = process.env.EMBER_SOURCE_DIR ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const TEMPLATE = path.join(sourceDir, '../shared/data/templates/Qwen-Qwen2.5-7B-Instruct.jinja');
const skip = fs.existsSync(TEMPLATE) ? false : `no Qwen 2.5 template at ${TEMPLATE}`;

const ALIAS = 'tiny-tools';
let server;
let client;

before(async () => {
  if (skip) return;
  // The tools' descriptions make a long prompt: -c 2048 leaves room for it and the calls.
  server = await startServer(['--api-key', API_KEY, '--parallel', '4', '--alias', ALIAS, '-c', '2048',
                              '--chat-template', TEMPLATE]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 120_000 });
});
after(async () => { await server?.stop(); });

// Bounded strings and enums: a model that never saw JSON still ends every value.
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', maxLength: 12 },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The time in a time zone',
      parameters: {
        type: 'object',
        properties: { zone: { type: 'string', maxLength: 8 }, hours: { type: 'integer', minimum: 0, maximum: 23 } },
        required: ['zone', 'hours'],
        additionalProperties: false,
      },
    },
  },
];
const chat = (extra = {}) => ({
  model: ALIAS, messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  // One call unless a test asks for more: after a call the grammar allows only the end of the turn,
  // whereas with parallel calls a model that never learnt to stop writes calls up to max_tokens.
  tools: TOOLS, temperature: 1, max_tokens: 300, parallel_tool_calls: false, ...extra,
});

// The arguments against the tool's parameters, by hand: exactly the keys, their types and bounds.
function assertCall(call, context, names = ['get_weather', 'get_time']) {
  const why = `${context}: ${JSON.stringify(call)}`;
  assert.equal(call.type, 'function', why);
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/, why);
  assert.ok(names.includes(call.function.name), `a tool's name: ${why}`);
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather') {
    assert.deepEqual(Object.keys(args), ['city', 'unit'], why);
    assert.equal(typeof args.city, 'string', why);
    assert.ok([...args.city].length <= 12, why);
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit), why);
  } else {
    assert.deepEqual(Object.keys(args), ['zone', 'hours'], why);
    assert.ok(typeof args.zone === 'string' && [...args.zone].length <= 8, why);
    assert.ok(Number.isInteger(args.hours) && args.hours >= 0 && args.hours <= 23, why);
  }
  return args;
}

const rejection = (promise) => promise.then(() => assert.fail('expected an error'), (e) => e);
function assertBadRequest(e, param, says) {
  assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${e}`);
  assert.equal(e.param, param, e.message);
  assert.ok(e.message.includes(says), `"${e.message}" should mention ${says}`);
}

test('tool_choice required: valid calls, content null, finish_reason tool_calls', { skip }, async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create(chat({ tool_choice: 'required', seed }));
    const [c] = r.choices;
    assert.equal(c.finish_reason, 'tool_calls', `seed ${seed}: ${JSON.stringify(c.message)}`);
    assert.equal(c.message.content, null);
    assert.ok(c.message.tool_calls.length >= 1);
    for (const call of c.message.tool_calls) assertCall(call, `seed ${seed}`);
  }
});

test('a named tool_choice: only that tool is called', { skip }, async () => {
  for (const seed of [4, 5]) {
    const r = await client.chat.completions.create(
      chat({ tool_choice: { type: 'function', function: { name: 'get_time' } }, seed }));
    const [c] = r.choices;
    assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c.message));
    for (const call of c.message.tool_calls) assertCall(call, `seed ${seed}`, ['get_time']);
  }
});

test('streamed: the first delta of a call has id, type and name; the arguments add up', { skip }, async () => {
  const stream = await client.chat.completions.create(chat({ tool_choice: 'required', seed: 7, stream: true }));
  const calls = [];
  let finish = null;
  let content = '';
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      content += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
      for (const d of ch.delta.tool_calls ?? []) {
        if (!calls[d.index]) {
          assert.equal(d.type, 'function', JSON.stringify(d));
          assert.equal(d.function.arguments, '', 'the first delta has the name and empty arguments');
          calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: '' } };
        } else {
          assert.equal(d.id, undefined, 'only the first delta carries the id');
          calls[d.index].function.arguments += d.function.arguments;
        }
      }
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.ok(!content.includes('<tool_call>'), `no raw markup in the content: ${content}`);
  assert.ok(calls.length >= 1);
  for (const call of calls) assertCall(call, 'streamed');
});

test('chat.completions.stream(): the helper assembles the calls', { skip }, async () => {
  const runner = client.chat.completions.stream(chat({ tool_choice: 'required', seed: 8 }));
  const done = [];
  runner.on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await runner.finalChatCompletion();
  const [c] = final.choices;
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(done.length, c.message.tool_calls.length);
  for (const call of c.message.tool_calls) assertCall(call, 'stream helper');
});

test('parallel_tool_calls: true gives one or more valid calls, false exactly one', { skip }, async () => {
  let most = 0;
  for (const seed of [9, 10, 11]) {
    const many = await client.chat.completions.create(
      chat({ tool_choice: 'required', parallel_tool_calls: true, max_tokens: 250, seed }));
    const [c] = many.choices;
    // ember-tiny rarely ends its turn, so it writes calls until max_tokens: a call cut off there is
    // dropped (finish_reason "length"), the ones before it are whole.
    assert.ok(['tool_calls', 'length'].includes(c.finish_reason), c.finish_reason);
    assert.ok(c.message.tool_calls.length >= 1);
    for (const call of c.message.tool_calls) assertCall(call, `parallel, seed ${seed}`);
    most = Math.max(most, c.message.tool_calls.length);
    const one = await client.chat.completions.create(
      chat({ tool_choice: 'required', parallel_tool_calls: false, seed }));
    assert.equal(one.choices[0].message.tool_calls.length, 1, JSON.stringify(one.choices[0].message));
    assertCall(one.choices[0].message.tool_calls[0], `single, seed ${seed}`);
    assert.equal(one.choices[0].finish_reason, 'tool_calls');
  }
  assert.ok(most > 1, 'parallel calls happened');
});

test('n = 2: each choice has its own calls', { skip }, async () => {
  const r = await client.chat.completions.create(chat({ tool_choice: 'required', n: 2, seed: 12 }));
  assert.equal(r.choices.length, 2);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'tool_calls');
    for (const call of c.message.tool_calls) assertCall(call, `choice ${c.index}`);
  }
});

test('tool_choice auto: text or calls, never markup in the content', { skip }, async () => {
  const r = await client.chat.completions.create(chat({ seed: 13, max_tokens: 20 }));
  const [c] = r.choices;
  assert.ok(['stop', 'length', 'tool_calls'].includes(c.finish_reason));
  assert.ok(!(c.message.content ?? '').includes('<tool_call>'));
  for (const call of c.message.tool_calls ?? []) assertCall(call, 'auto');
});

test('a tool result goes back through the template', { skip }, async () => {
  const first = await client.chat.completions.create(chat({ tool_choice: 'required', seed: 14 }));
  const assistant = first.choices[0].message;
  const base = await client.chat.completions.create(chat({ max_tokens: 1, tool_choice: 'none' }));
  const result = 'Sunny and 21 degrees, a light wind from the west';
  const messages = [
    ...chat().messages,
    { role: 'assistant', content: null, tool_calls: assistant.tool_calls },
    ...assistant.tool_calls.map((call) => ({ role: 'tool', tool_call_id: call.id, content: result })),
  ];
  const r = await client.chat.completions.create(chat({ messages, max_tokens: 1, tool_choice: 'none' }));
  assert.equal(r.choices.length, 1);
  // The calls and their results are in the prompt: it grew by at least the results' tokens.
  assert.ok(r.usage.prompt_tokens > base.usage.prompt_tokens + 10,
            `${r.usage.prompt_tokens} vs ${base.usage.prompt_tokens}`);
});

test('400s: an unknown named tool, invalid arguments in the history, tools with response_format', { skip },
  async () => {
    assertBadRequest(await rejection(client.chat.completions.create(
      chat({ tool_choice: { type: 'function', function: { name: 'nope' } } }))),
    'tool_choice.function.name', 'nope');
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"zone": ' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'noon' },
    ];
    assertBadRequest(await rejection(client.chat.completions.create(chat({ messages }))),
      'messages[1].tool_calls[0].function.arguments', 'not valid JSON');
    assertBadRequest(await rejection(client.chat.completions.create(
      chat({ response_format: { type: 'json_object' } }))), 'response_format', "'tools' and 'response_format'");
    assertBadRequest(await rejection(client.chat.completions.create(
      chat({ tools: [{ type: 'function', function: { name: 'bad name' } }] }))), 'tools[0].function.name', '1 to 64');
    assertBadRequest(await rejection(client.chat.completions.create(
      chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'strin' } } } } }] }))),
    'tools', 'Invalid tools');
  });
