// The chat UI in a real browser: Playwright (playwright-core) drives Debian's Chromium headless
// against a real `ember serve` on ember-tiny. Sends a message and sees the streamed reply, stops a
// stream, finds the conversation after a reload, shows hostile model output as text (a real reply
// whose deltas a route rewrites, and an imported conversation), and shows token alternatives on
// hover. Screenshots of the main states go to $EMBER_UI_SCREENSHOTS (a ctest artifact).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { API_KEY, startServer } from './server.mjs';

const shots = process.env.EMBER_UI_SCREENSHOTS ?? '';
const executablePath = process.env.EMBER_CHROMIUM ?? '/usr/bin/chromium';
let server;
let context;
let page;
let profile;
const dialogs = [];
const pageErrors = [];

async function screenshot(name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), animations: 'disabled', caret: 'hide' });
}

// Settings for reproducible replies: greedy, and long enough to stop mid-way.
async function setSampling({ temperature = '0', maxTokens = '', logprobs = false } = {}) {
  if (!(await page.locator('#settings').isVisible())) await page.click('#settings-toggle');
  await page.fill('#temperature', temperature);
  await page.fill('#max-tokens', maxTokens);
  const box = page.locator('#show-logprobs');
  if ((await box.isChecked()) !== logprobs) await box.click();
  await page.click('#settings-toggle');
}

async function send(text) {
  await page.fill('#prompt', text);
  await page.keyboard.press('Enter');
}

const lastReply = () => page.locator('article.message[data-role="assistant"]').last();

async function waitForState(reply, states, timeout = 30_000) {
  await page.waitForFunction(
    ([el, wanted]) => wanted.includes(el.dataset.state), [await reply.elementHandle(), states], { timeout });
}

before(async () => {
  server = await startServer(['--parallel', '2', '--alias', 'ember-tiny']);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ember-ui-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-first-run'],
    viewport: { width: 1100, height: 720 },
  });
  console.log(`browser: chromium ${context.browser()?.version() ?? '(persistent context)'}`);
  page = context.pages()[0] ?? await context.newPage();
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
  });
  await page.goto(server.url + '/');
  await page.locator('#prompt').waitFor();
});

after(async () => {
  await context?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  await server?.stop();
});

test('a message streams a reply with its stats, and the model is described', async () => {
  await setSampling({ maxTokens: '24' });
  await send('And God said');
  const user = page.locator('article.message[data-role="user"]').last();
  assert.equal((await user.locator('.content').textContent()).trim(), 'And God said');
  const reply = lastReply();
  await waitForState(reply, ['done']);
  const text = (await reply.locator('.content').textContent()).trim();
  assert.ok(text.length > 0, 'an empty reply');
  assert.match(await reply.locator('[data-stat="tokens"]').textContent(), /\d/);
  assert.match(await reply.locator('[data-stat="tps"]').textContent(), /\d/);
  assert.match(await reply.locator('[data-stat="ttft"]').textContent(), /\d/);
  await page.click('#settings-toggle');
  await page.locator('#model-info').filter({ hasText: 'ember-tiny' }).waitFor();
  await screenshot('settings');
  await page.click('#settings-toggle');
  await screenshot('reply');
  assert.deepEqual(pageErrors, []);
});

test('Stop ends a running stream, keeps its text and frees the composer; Esc does too', async () => {
  await setSampling({ maxTokens: '' });
  // A slow network makes "mid-stream" certain: ember-tiny writes faster than any click.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions',
                 { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
  try {
    const started = async (reply) => {
      await waitForState(reply, ['streaming']);
      await page.waitForFunction((el) => el.querySelector('.content').textContent.trim().length > 0,
                                 await reply.elementHandle());
    };
    await send('In the beginning');
    let reply = lastReply();
    await started(reply);
    await page.locator('#stop').click();
    await waitForState(reply, ['stopped']);
    assert.ok((await reply.locator('.content').textContent()).trim().length > 0, 'the partial reply was dropped');
    assert.ok(await page.locator('#prompt').isEditable());
    assert.ok(!(await page.locator('#stop').isVisible()) || await page.locator('#stop').isDisabled());
    await screenshot('stopped');

    await send('And the earth');
    reply = lastReply();
    await started(reply);
    await page.keyboard.press('Escape');
    await waitForState(reply, ['stopped']);
  } finally {
    await cdp.send('Network.emulateNetworkConditions',
                   { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
  }
});

test('a reload finds the conversation, and search filters the list', async () => {
  const items = page.locator('nav#conversations li[data-conversation-id]');
  const before = await items.count();
  assert.ok(before >= 1);
  const messages = await page.locator('article.message').count();
  await page.reload();
  await page.locator('#prompt').waitFor();
  await page.locator('article.message').first().waitFor();
  assert.equal(await page.locator('article.message').count(), messages);
  assert.equal(await items.count(), before);
  // A second conversation, then search by its content.
  await page.click('#new-chat');
  assert.equal(await page.locator('article.message').count(), 0);
  await setSampling({ maxTokens: '8' });
  await send('Moses went up');
  await waitForState(lastReply(), ['done']);
  assert.equal(await items.count(), before + 1);
  await page.fill('#search', 'Moses went up');
  await page.waitForFunction(() => document.querySelectorAll('nav#conversations li[data-conversation-id]').length === 1);
  await page.fill('#search', '');
});

test('hostile model output shows as text and runs nothing', async () => {
  const pieces = ['Hi <im', 'g src=x onerror=alert(1)> [x](javascript:alert(3)) <scr', 'ipt>alert(2)</script>',
                  '\n\n| a | b |\n|---|---|\n| <b>1</b> | `x|y` |\n'];
  await page.route('**/v1/chat/completions', async (route) => {
    const res = await route.fetch();
    let i = 0;
    const body = (await res.text()).split('\n\n').map((ev) => {
      if (!ev.startsWith('data: {')) return ev;
      const chunk = JSON.parse(ev.slice(6));
      const delta = chunk.choices?.[0]?.delta;
      if (delta?.content) delta.content = i < pieces.length ? pieces[i++] : '';
      return 'data: ' + JSON.stringify(chunk);
    }).join('\n\n');
    await route.fulfill({ response: res, body });
  }, { times: 1 });
  await setSampling({ maxTokens: '12' });
  await send('Say something');
  const reply = lastReply();
  await waitForState(reply, ['done']);
  const check = async (el) => {
    const text = await el.locator('.content').textContent();
    assert.match(text, /<img src=x onerror=alert\(1\)>/);
    assert.match(text, /<script>alert\(2\)<\/script>/);
    assert.equal(await el.locator('img, script, iframe, object, embed, [onerror], [onload]').count(), 0);
    assert.equal(await el.locator('a[href^="javascript:" i]').count(), 0);
  };
  await check(reply);
  await page.waitForTimeout(200);  // a late onerror would fire by now
  await screenshot('hostile');

  // The same payload in an imported conversation (a shared file is an attack vector too).
  const hostile = {
    format: 'ember-chat',
    version: 1,
    conversations: [{
      id: 'imported-1', title: 'Imported <img src=x onerror=alert(4)>', created: Date.now(), updated: Date.now(),
      messages: [{ role: 'user', content: 'show me' },
                 { role: 'assistant', content: 'Look: <img src=x onerror=alert(5)> <script>alert(6)</script> ' +
                   '[y](javascript:alert(7)) <svg onload=alert(8)>' }],
    }],
  };
  const file = path.join(profile, 'hostile.json');
  fs.writeFileSync(file, JSON.stringify(hostile));
  await page.setInputFiles('#import-file', file);
  await page.locator('nav#conversations li[data-conversation-id]').filter({ hasText: 'Imported' }).first().click();
  const imported = page.locator('article.message[data-role="assistant"]').last();
  await imported.filter({ hasText: 'Look:' }).waitFor();
  assert.match(await imported.locator('.content').textContent(), /<img src=x onerror=alert\(5\)>/);
  assert.equal(await page.locator('#messages img, #messages script, #messages svg, nav img').count(), 0);
  await page.reload();  // stored replies re-render through the same renderer
  await page.locator('#prompt').waitFor();
  await page.waitForTimeout(200);
  assert.deepEqual(dialogs.filter((d) => /^[1-8]$/.test(d)), [], `a payload ran: ${dialogs}`);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
});

test('the logprobs view shows alternatives on hover', async () => {
  await page.click('#new-chat');
  await setSampling({ maxTokens: '8', logprobs: true });
  await send('And God said');
  const reply = lastReply();
  await waitForState(reply, ['done']);
  const view = reply.locator('[data-action="view-tokens"]');
  if (await reply.locator('.content span.token').count() === 0) await view.click();
  const token = reply.locator('.content span.token').first();
  await token.waitFor();
  const p = Number(await token.getAttribute('data-prob'));
  assert.ok(p > 0 && p <= 1, `data-prob ${p}`);
  await token.hover();
  const tooltip = page.getByRole('tooltip').filter({ visible: true }).first();
  await tooltip.waitFor();
  const rows = await tooltip.locator('li').allTextContents();
  assert.ok(rows.length >= 2, `alternatives: ${rows}`);
  for (const row of rows) assert.match(row, /\d+(\.\d+)?\s*%/);
  await screenshot('logprobs');
  // Moving away hides it; keyboard focus on another token shows that token's alternatives.
  await page.mouse.move(0, 0);
  await page.waitForFunction(() => ![...document.querySelectorAll('[role="tooltip"]')]
    .some((t) => t.checkVisibility() && t.textContent.trim().length > 0));
  const second = reply.locator('.content span.token').nth(1);
  await second.focus();
  const shown = page.getByRole('tooltip').filter({ visible: true }).first();
  await shown.waitFor();
  const describedBy = await second.getAttribute('aria-describedby');
  assert.equal(await shown.getAttribute('id'), describedBy);
  assert.ok((await shown.locator('li').count()) >= 1);
});

test('dark theme and a phone-sized window', async () => {
  await page.click('#settings-toggle');
  await page.selectOption('#theme', 'dark');
  await page.click('#settings-toggle');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('#prompt').waitFor();
  assert.ok(await page.locator('#send').isVisible());
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px at 390px`);
  await screenshot('phone-dark');
  await page.setViewportSize({ width: 1100, height: 720 });
  assert.deepEqual(pageErrors, []);
});

test('a server with an API key: the page loads, asks for the key, then works with it', async () => {
  const keyed = await startServer(['--api-key', API_KEY]);
  const other = await context.newPage();
  try {
    other.on('pageerror', (e) => pageErrors.push(e.message));
    await other.goto(keyed.url + '/');  // the page itself needs no key
    // /v1/models and /props answer 401: the settings open at the key field.
    await other.locator('#api-key').waitFor({ state: 'visible' });
    await other.waitForFunction(() => document.activeElement?.id === 'api-key');
    // Leaving the field fires the browser's own change event, once. (A dispatched change event
    // left the browser's one pending: it fired when the settings closed, and its 401 could take
    // the focus from the prompt, so Enter went to the key field.)
    await other.fill('#api-key', 'wrong-key');
    await other.locator('#api-key').blur();
    // The page asks the server again with that key; its 401 reopens the settings at the key field.
    await other.locator('#api-key[aria-invalid="true"]').waitFor();
    await other.waitForFunction(() => document.activeElement?.id === 'api-key');
    await other.click('#settings-toggle');
    await other.fill('#prompt', 'And God said');
    await other.keyboard.press('Enter');
    const failed = other.locator('article.message[data-role="assistant"]').last();
    await other.waitForFunction((el) => el.dataset.state === 'error', await failed.elementHandle());
    await other.locator('#api-key').waitFor({ state: 'visible' });
    await other.fill('#api-key', API_KEY);
    await other.locator('#api-key').blur();
    await other.click('#settings-toggle');
    await other.fill('#prompt', 'And God said');
    await other.keyboard.press('Enter');
    const reply = other.locator('article.message[data-role="assistant"]').last();
    await other.waitForFunction((el) => ['done', 'stopped'].includes(el.dataset.state), await reply.elementHandle(),
                                { timeout: 30_000 });
    assert.equal(await reply.getAttribute('data-state'), 'done');
    assert.ok((await reply.locator('.content').textContent()).trim().length > 0);
  } finally {
    await other.close();
    await keyed.stop();
  }
});
