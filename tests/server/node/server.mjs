// Test harness: starts a real `ember serve` on a free 127.0.0.1 port and stops it with SIGTERM.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const sourceDir = process.env.EMBER_SOURCE_DIR ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = process.env.EMBER_BIN ?? path.join(sourceDir, 'build/release/bin/ember');
export const API_KEY = 'test-key';

const live = new Set();
process.on('exit', () => { for (const child of live) child.kill('SIGKILL'); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts `ember serve -m models/ember-tiny.gguf --port 0 ...extraArgs`; resolves once
// GET /health answers 200. Returns { port, baseURL (…/v1), url (root), stop() }.
export async function startServer(extraArgs = [], { startTimeoutMs = 30_000 } = {}) {
  // One compute thread: ctest runs several servers at once on shared cores, where spin-waiting
  // compute threads slow everything down many times over.
  const args = ['serve', '-m', path.join(sourceDir, 'models/ember-tiny.gguf'), '--host', '127.0.0.1',
                '--port', '0', '--threads', '1', '--shutdown-timeout', '5', ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // A failed test must not hang node on a server it forgot: unref, and kill it on exit.
  child.unref();
  child.stderr.unref();
  live.add(child);
  child.on('exit', () => live.delete(child));
  let stderr = '';
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => resolve({ code: null, signal: null, error: e.message })); // e.g. no binary
  });

  const deadline = Date.now() + startTimeoutMs;
  const fail = (why) => {
    child.kill('SIGKILL');
    throw new Error(`ember serve ${why}\n${bin} ${args.join(' ')}\nstderr:\n${stderr}`);
  };
  // The port comes from the stderr line "listening on http://127.0.0.1:PORT".
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('printed no "listening on" line in time')),
                             startTimeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`exited early: ${JSON.stringify(how)}`));
    });
  }).catch((e) => fail(e.message));

  const url = `http://127.0.0.1:${port}`;
  // /health is 503 while the model loads; poll it until 200.
  for (;;) {
    if (Date.now() > deadline) fail('did not become healthy in time');
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (r.status === 200) break;
    } catch { /* not accepting yet */ }
    await sleep(50);
  }

  let stopped = false;
  return {
    port, url, baseURL: `${url}/v1`,
    get stderr() { return stderr; },
    // SIGTERM must drain and exit 0 within 30 s; otherwise SIGKILL and fail.
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill('SIGTERM');
      let timer;
      const result = await Promise.race([
        exited,
        new Promise((r) => { timer = setTimeout(() => r(null), 30_000); }),
      ]);
      clearTimeout(timer);
      if (result === null) {
        child.kill('SIGKILL');
        assert.fail(`ember serve did not exit within 30 s of SIGTERM\nstderr:\n${stderr}`);
      }
      assert.deepEqual(result, { code: 0, signal: null }, `ember serve exit\nstderr:\n${stderr}`);
    },
  };
}

// GET /metrics as { name or name{labels}: number }.
export async function metrics(server) {
  const r = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(5_000),
  });
  assert.equal(r.status, 200);
  const text = await r.text();
  const values = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) values[m[1]] = Number(m[2]);
  }
  return { text, values };
}
