// The server's HTTP API: JSON GETs and streamed chat completions (fetch + ReadableStream SSE parsing).

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

function headers(apiKey, json = false) {
  const h = {};
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

// The message of an error response: OpenAI's {"error": {"message"}}, else the text, else the status.
async function errorOf(res) {
  let text = '';
  try { text = await res.text(); } catch { /* the body is gone */ }
  let message = '';
  try { message = JSON.parse(text)?.error?.message ?? ''; } catch { /* not JSON */ }
  if (typeof message !== 'string' || !message) message = text.trim().slice(0, 500) || res.statusText || 'request failed';
  return new ApiError(`HTTP ${res.status}: ${message}`, res.status);
}

export async function getJson(path, apiKey) {
  let res;
  try {
    res = await fetch(path, { headers: headers(apiKey), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(`Cannot reach the server (${e.message}).`);
  }
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

// An SSE parser (the event-stream format's data lines): feed it decoded text with push(); it calls
// onData(payload) for each event's data (lines joined with '\n') and stops at the first that returns
// true. Lines end with CRLF, LF or a bare CR; ':' comments and other fields are ignored.
export class SseParser {
  constructor(onData) {
    this.onData = onData;
    this.buffer = '';
    this.data = [];        // the data lines of the event being read
    this.stopped = false;
  }

  // Feeds text; `final` at the end of the stream. Returns true once onData has returned true.
  push(text, final = false) {
    if (this.stopped) return true;
    this.buffer += text;
    const buffer = this.buffer;
    let pos = 0;
    for (;;) {
      let end = pos;
      while (end < buffer.length && buffer[end] !== '\n' && buffer[end] !== '\r') end++;
      if (end === buffer.length) break;
      // A CR at the end of what has arrived may be the first half of a CRLF: wait for more.
      if (buffer[end] === '\r' && end + 1 === buffer.length && !final) break;
      const line = buffer.slice(pos, end);
      pos = end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1);
      if (this.line(line)) { this.buffer = ''; return true; }
    }
    this.buffer = buffer.slice(pos);
    if (final) {
      // A last event without its blank line still counts.
      if (this.buffer !== '' && this.line(this.buffer)) return true;
      this.buffer = '';
      return this.line('');
    }
    return false;
  }

  line(line) {
    if (line === '') {
      if (this.data.length === 0) return false;
      const payload = this.data.join('\n');
      this.data = [];
      this.stopped = Boolean(this.onData(payload));
      return this.stopped;
    }
    if (line === 'data') this.data.push('');
    else if (line.startsWith('data:')) this.data.push(line.slice(line[5] === ' ' ? 6 : 5));
    return false;
  }
}

const aborted = () => new DOMException('The request was stopped.', 'AbortError');

// Posts a streaming chat completion and calls onChunk(chunk) for every event holding a JSON object
// until `data: [DONE]` (others, such as `data: null`, are skipped). Throws ApiError for HTTP errors
// and for an error object sent mid-stream; an abort through `signal` rejects with an AbortError
// (also while an error's body is read). Resolves {done}: false when the stream ended without [DONE].
export async function streamChat(body, { apiKey, signal, onChunk }) {
  let res;
  try {
    res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(apiKey, true), body: JSON.stringify(body), signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`Cannot reach the server (${e.message}).`);
  }
  if (!res.ok) {
    const error = await errorOf(res);
    throw signal?.aborted ? aborted() : error;
  }
  if (!res.body) throw new ApiError('The server sent no stream.');

  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser((payload) => {
    if (payload === '[DONE]') return true;
    let chunk;
    try {
      chunk = JSON.parse(payload);
    } catch {
      throw new ApiError(`The server sent an unreadable event: ${payload.slice(0, 200)}`);
    }
    if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) return false;
    if (chunk.error) {
      const message = typeof chunk.error?.message === 'string' ? chunk.error.message : JSON.stringify(chunk.error);
      throw new ApiError(message, res.status);
    }
    onChunk(chunk);
    return false;
  });

  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { done: parser.push(decoder.decode(), true) };
      if (parser.push(decoder.decode(value, { stream: true }))) return { done: true };
    }
  } finally {
    reader.cancel().catch(() => {});  // a no-op on a finished stream
  }
}
