// Drives `warden serve` with the official `openai` npm client: plain and
// streaming chat, a forced tool call whose arguments must validate against
// the tool's schema (checked with ajv), and a json_schema response. The model
// has random weights (`warden make-model`), so validity can only come from the
// server's constrained decoding.
//
// WARDEN_BINARY: path of the warden binary (CTest sets it; default ../../../build/warden).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Ajv from 'ajv';

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BINARY || join(here, '../../../build/warden');
const apiKey = 'e2e-key';
let dir, server, client;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-openai-'));
  // HOME and the XDG folders inside the test's own folder: the server keeps
  // its packed-weights cache there, not in the real home.
  const env = { ...process.env, HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'config'),
                XDG_DATA_HOME: join(dir, 'data'), XDG_CACHE_HOME: join(dir, 'cache'),
                XDG_STATE_HOME: join(dir, 'state'), XDG_RUNTIME_DIR: join(dir, 'run') };
  const model = join(dir, 'tiny.gguf');
  execFileSync(warden, ['make-model', '--preset', 'tiny-qwen3', '--type', 'q8_0', '--seed', '3', model], { env });
  server = spawn(warden, ['serve', '-m', model, '--port', '0', '--parallel', '2', '-t', '2', '-c', '4096',
                          '--api-key', apiKey, '--alias', 'tiny'],
                 { stdio: ['ignore', 'pipe', 'inherit'], env });
  // The server prints "listening on http://127.0.0.1:PORT" once bound.
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`warden serve exited with ${code}`)));
  });
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 300_000 });
});

after(() => {
  if (server) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

test('models lists the alias', async () => {
  const list = await client.models.list();
  assert.equal(list.data[0].id, 'tiny');
});

test('non-streaming chat completion', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, seed: 1 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens <= 8);
});

test('streaming chat completion', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', messages, max_tokens: 12, seed: 2, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta?.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.ok(chunks >= 2);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.completion_tokens <= 12);
  assert.equal(typeof text, 'string');
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Forecast for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] },
        days: { type: 'integer', minimum: 1, maximum: 10 },
        units: { type: 'string', enum: ['metric', 'imperial'] },
        alerts: { type: 'boolean' },
      },
      required: ['city', 'days', 'units'],
      additionalProperties: false,
    },
  },
};
const validateWeather = new Ajv().compile(weatherTool.function.parameters);

test('forced tool call (named function) validates against the schema', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: 'tiny', messages, seed, tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const choice = r.choices[0];
    assert.equal(choice.finish_reason, 'stop');  // a call forced by name ends "stop", as OpenAI's do
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.ok(call.id);
    const args = JSON.parse(call.function.arguments);
    assert.ok(validateWeather(args), JSON.stringify(validateWeather.errors));
  }
});

test('tool_choice required, streamed, validates too', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', messages, seed: 9, tools: [weatherTool], tool_choice: 'required', stream: true,
  });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    for (const tc of choice.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { name: '', arguments: '' };
      if (tc.function?.name) calls[tc.index].name += tc.function.name;
      if (tc.function?.arguments) calls[tc.index].arguments += tc.function.arguments;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'get_weather');
  const args = JSON.parse(calls[0].arguments);
  assert.ok(validateWeather(args), JSON.stringify(validateWeather.errors));
});

test('forced tool call streams its arguments in pieces (stream helper accumulates them)', async (t) => {
  for (const seed of [4, 5]) {
    const stream = client.beta.chat.completions.stream({
      model: 'tiny', messages, seed, tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const deltas = [];
    let argumentEvents = 0;
    stream.on('chunk', (chunk) => {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) deltas.push(tc);
    });
    stream.on('tool_calls.function.arguments.delta', () => { argumentEvents++; });
    const final = await stream.finalChatCompletion();
    // OpenAI's shape: the call opens with index, id, type, name and empty
    // arguments; the arguments follow in their own deltas.
    assert.ok(deltas.length >= 2, `only ${deltas.length} tool-call delta(s)`);
    const [first, ...rest] = deltas;
    assert.equal(first.index, 0);
    assert.ok(first.id?.startsWith('call_'));
    assert.equal(first.type, 'function');
    assert.equal(first.function.name, 'get_weather');
    assert.equal(first.function.arguments, '');
    for (const d of rest) {
      assert.equal(d.index, 0);
      assert.equal(d.id, undefined);
      assert.equal(d.function.name, undefined);
    }
    assert.ok(argumentEvents >= 1);
    t.diagnostic(`seed ${seed}: ${deltas.length} tool-call deltas, ${argumentEvents} argument events`);
    const choice = final.choices[0];
    assert.equal(choice.finish_reason, 'stop');  // forced by name, as OpenAI's
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.id, first.id);
    assert.equal(call.function.arguments, rest.map((d) => d.function.arguments).join(''));
    const args = JSON.parse(call.function.arguments);
    assert.ok(validateWeather(args), JSON.stringify(validateWeather.errors));
  }
});

test('json_schema response validates', async () => {
  const schema = {
    type: 'object',
    properties: {
      title: { type: 'string', maxLength: 20 },
      rating: { type: 'integer', minimum: 1, maximum: 5 },
      tags: { type: 'array', items: { type: 'string', enum: ['x', 'y', 'z'] }, maxItems: 4 },
      price: { type: 'number', minimum: 0 },
      sold_out: { type: 'boolean' },
    },
    required: ['title', 'rating', 'tags', 'price', 'sold_out'],
    additionalProperties: false,
  };
  const validate = new Ajv().compile(schema);
  for (const seed of [4, 5]) {
    const r = await client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'user', content: 'Describe a product as JSON.' }], seed,
      response_format: { type: 'json_schema', json_schema: { name: 'product', schema, strict: true } },
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const value = JSON.parse(r.choices[0].message.content);
    assert.ok(validate(value), JSON.stringify(validate.errors));
  }
});

// An agent loop: the assistant's turn goes back as the client got it
// (content null beside tool_calls), with the tool's answer after it.
test('a tool call and its result go back to the model', async () => {
  const history = [...messages];
  const r = await client.chat.completions.create({
    model: 'tiny', messages: history, seed: 1, tools: [weatherTool], tool_choice: 'required',
    parallel_tool_calls: false,
  });
  const message = r.choices[0].message;
  assert.equal(message.content, null);
  assert.equal(message.tool_calls.length, 1);
  history.push(message);
  history.push({ role: 'tool', tool_call_id: message.tool_calls[0].id, content: 'Sunny, 21 degrees' });
  const next = await client.chat.completions.create({ model: 'tiny', messages: history, tools: [weatherTool],
                                                      max_tokens: 8 });
  assert.equal(next.object, 'chat.completion');
  assert.ok(next.usage.prompt_tokens > r.usage.prompt_tokens);
  assert.equal((await client.models.retrieve('tiny')).id, 'tiny');
});

// With stream_options.include_usage, the usage arrives once, in the last chunk.
test('a streamed answer reports its usage once', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', messages, max_tokens: 6, stream: true, stream_options: { include_usage: true },
  });
  const usages = [];
  for await (const chunk of stream) if (chunk.usage) usages.push(chunk);
  assert.equal(usages.length, 1);
  assert.deepEqual(usages[0].choices, []);
  assert.ok(usages[0].usage.completion_tokens <= 6);
});

test('logprobs come back in the form the client types', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny', messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((e) => Buffer.from(e.bytes).toString('latin1')).join(''),
               Buffer.from(r.choices[0].message.content, 'utf8').toString('latin1'));
  for (const e of content) {
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(e.logprob <= 0);
  }
});

test('errors come back as OpenAI errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  const anonymous = new OpenAI({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(anonymous.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages, temperature: 'hot' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
});
