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

// Posts a streaming chat completion and calls onChunk(chunk) for every parsed SSE event until
// `data: [DONE]`. Throws ApiError for HTTP errors and for an error object sent mid-stream; an abort
// through `signal` rejects with the fetch's AbortError. Resolves {done}: false when the stream ended
// without [DONE].
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
  if (!res.ok) throw await errorOf(res);
  if (!res.body) throw new ApiError('The server sent no stream.');

  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];  // the data lines of the event being read

  // Returns true at [DONE].
  const dispatch = () => {
    if (data.length === 0) return false;
    const payload = data.join('\n');
    data = [];
    if (payload === '[DONE]') return true;
    let chunk;
    try {
      chunk = JSON.parse(payload);
    } catch {
      throw new ApiError(`The server sent an unreadable event: ${payload.slice(0, 200)}`);
    }
    if (chunk && chunk.error) {
      const message = typeof chunk.error.message === 'string' ? chunk.error.message : JSON.stringify(chunk.error);
      throw new ApiError(message, res.status);
    }
    onChunk(chunk);
    return false;
  };

  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (dispatch()) return { done: true };
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line[5] === ' ' ? 6 : 5));
        }
        // ':' comments (the server's heartbeats) and other fields are ignored
      }
      if (done) {
        if (buffer.startsWith('data:')) data.push(buffer.slice(buffer[5] === ' ' ? 6 : 5));
        return { done: dispatch() };
      }
    }
  } finally {
    reader.cancel().catch(() => {});  // a no-op on a finished stream
  }
}
