#!/usr/bin/env python3
"""Raw-HTTP bad-request corpus for `ember serve` (docs/plans/server-research.md §5).

Usage: bad_requests.py [PATH/TO/ember]      (or EMBER_BIN; the repository from EMBER_SOURCE_DIR or
                                             this file's location; -k SUBSTRING runs matching cases only)

Starts `ember serve -m models/ember-tiny.gguf --port 0 --max-body 1048576 --timeout 2`, reads the
port from its "listening on http://127.0.0.1:PORT" line, and sends hand-written bytes over plain
sockets (no HTTP library between the test and the server, so malformed framing reaches it as sent).
Each case checks the exact status and, where the server answers with a body, OpenAI's error object
{"error": {"message", "type", "param", "code"}} with the expected `param`; after every case
GET /health must still answer 200. The run ends with SIGTERM, which must exit 0.

Prints one line per case and then "N passed, M failed"; exit status 1 when anything failed.
Only 127.0.0.1 is contacted; every socket has a timeout and every loop a bound. Python 3 stdlib only.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import ember_serve

HOST = "127.0.0.1"
CONTEXT = 256  # ember-tiny's context (models/README.md); checked against /v1/models at start
MAX_BODY = 1048576
READ_TIMEOUT_S = 2

PORT = 0
RESULTS = []  # (name, ok, detail)


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# --- raw HTTP ---------------------------------------------------------------------------------

def connect(timeout=10.0):
    return socket.create_connection((HOST, PORT), timeout=timeout)


def complete(raw):
    """Whether `raw` holds a whole response with a Content-Length body (so no need to wait for EOF)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    m = re.search(rb"^content-length: *(\d+)", head, re.I | re.M)
    return bool(sep) and m is not None and len(body) >= int(m.group(1))


def read_all(sock, limit=8 << 20, deadline_s=15.0, until_eof=False):
    """Reads until EOF, or (not until_eof) a complete Content-Length response, the byte limit or the
    deadline; ECONNRESET ends the read."""
    out = b""
    end = time.monotonic() + deadline_s
    while len(out) < limit and time.monotonic() < end and (until_eof or not complete(out)):
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return out


def dechunk(body):
    out = b""
    pos = 0
    for _ in range(1 << 20):
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            break
        size = int(body[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += body[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2
    return out


def parse_response(raw):
    """(status, {lower-case header: value}, body bytes) of the first response in `raw`."""
    check(raw, "no response (connection closed without a status line)")
    head, sep, body = raw.partition(b"\r\n\r\n")
    check(sep, f"incomplete response head: {raw[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    check(m, f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return int(m.group(1)), headers, body


def exchange(data, timeout=10.0):
    """Sends `data` (the request should say Connection: close) and returns the parsed response."""
    with connect(timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything: read what it said
        return parse_response(read_all(s))


def http(method, path, body=None, headers=None, raw_body=None):
    if raw_body is None and body is not None:
        raw_body = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT}", "Connection: close"]
    if raw_body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(raw_body)}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (raw_body or b"")
    return exchange(data)


def health_ok():
    status, _, body = http("GET", "/health")
    return status == 200, f"/health answered {status} {body[:100]!r}"


def metric(name):
    status, _, body = http("GET", "/metrics")
    check(status == 200, f"/metrics answered {status}")
    m = re.search(rb"^" + re.escape(name.encode()) + rb" ([0-9.eE+-]+)$", body, re.M)
    check(m, f"/metrics has no {name}")
    return float(m.group(1))


def wait_kv_idle(seconds=5.0):
    end = time.monotonic() + seconds
    used = running = None
    while time.monotonic() < end:
        used, running = metric("ember_kv_blocks_used"), metric("ember_running_sequences")
        if used == 0 and running == 0:
            return
        time.sleep(0.1)
    raise Failure(f"after {seconds:.0f} s ember_kv_blocks_used={used} ember_running_sequences={running}")


def expect_error(resp, status, param="", contains=()):
    """The status, and (param != None) OpenAI's error object with that param ("" means null)."""
    got, headers, body = resp
    check(got == status, f"status {got}, expected {status}; body {body[:300]!r}")
    if param is None:
        return
    check(headers.get("content-type", "").startswith("application/json"),
          f"content-type {headers.get('content-type')!r}, expected application/json")
    try:
        obj = json.loads(body)
    except ValueError:
        raise Failure(f"body is not JSON: {body[:200]!r}")
    check(isinstance(obj, dict) and list(obj) == ["error"], f"not an error object: {body[:300]!r}")
    err = obj["error"]
    check(isinstance(err, dict) and set(err) == {"message", "type", "param", "code"},
          f"error object keys {sorted(err) if isinstance(err, dict) else err!r}")
    check(isinstance(err["message"], str) and err["message"], "empty error message")
    check(isinstance(err["type"], str) and err["type"], "empty error type")
    want_type = "server_error" if status >= 500 else "invalid_request_error"
    check(err["type"] == want_type, f"type {err['type']!r}, expected {want_type!r}")
    check(err["param"] == (param or None), f"param {err['param']!r}, expected {param or None!r} "
                                           f"(message: {err['message']!r})")
    for text in contains:
        check(text in err["message"], f"message {err['message']!r} does not mention {text!r}")


# --- cases ------------------------------------------------------------------------------------

CASES = []


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn
    return register


def simple(name, method, path, body=None, status=400, param="", raw_body=None, contains=()):
    CASES.append((name, lambda: expect_error(http(method, path, body, raw_body=raw_body), status, param, contains)))


CHAT = "/v1/chat/completions"
COMPL = "/v1/completions"
MSG = [{"role": "user", "content": "hi"}]


def chat(**fields):
    body = {"messages": MSG, "max_tokens": 1}
    body.update(fields)
    return body


def compl(**fields):
    body = {"prompt": "hi", "max_tokens": 1}
    body.update(fields)
    return body


# Bodies that are not a JSON object.
simple("invalid JSON", "POST", CHAT, raw_body=b'{"messages": [}')
simple("truncated JSON", "POST", COMPL, raw_body=b'{"prompt": "hi"')
simple("empty body", "POST", CHAT, raw_body=b"")
simple("top-level array", "POST", CHAT, raw_body=b'[{"messages": []}]')
simple("top-level number", "POST", CHAT, raw_body=b"42")
simple("top-level string", "POST", COMPL, raw_body=b'"hello"')
simple("top-level null", "POST", COMPL, raw_body=b"null")
simple("invalid UTF-8 in a string (0xff)", "POST", COMPL, raw_body=b'{"prompt": "a\xff\xfeb", "max_tokens": 1}')
simple("invalid UTF-8 in a key (0xc3 alone)", "POST", CHAT,
       raw_body=b'{"messages": [{"role": "user", "content": "x"}], "\xc3": 1}')
simple("100k-deep nesting [[[[", "POST", CHAT, raw_body=b"[" * 100000)
simple("100k-deep nesting in a field", "POST", CHAT,
       raw_body=b'{"messages": ' + b'[' * 100000 + b']' * 100000 + b'}')
simple("100k-deep objects", "POST", COMPL, raw_body=b'{"a":' * 100000 + b'1' + b'}' * 100000)

# Missing fields and wrong types, chat.
simple("chat: missing messages", "POST", CHAT, {"max_tokens": 1}, param="messages")
simple("chat: messages null", "POST", CHAT, {"messages": None}, param="messages")
simple("chat: messages \"hi\"", "POST", CHAT, chat(messages="hi"), param="messages")
simple("chat: messages []", "POST", CHAT, chat(messages=[]), param="messages")
simple("chat: messages [5]", "POST", CHAT, chat(messages=[5]), param="messages[0]")
simple("chat: message without role", "POST", CHAT, chat(messages=[{"content": "x"}]), param="messages[0].role")
simple("chat: role 5", "POST", CHAT, chat(messages=[{"role": 5, "content": "x"}]), param="messages[0].role")
simple("chat: role \"bogus\"", "POST", CHAT, chat(messages=[{"role": "bogus", "content": "x"}]),
       param="messages[0].role")
simple("chat: user without content", "POST", CHAT, chat(messages=[{"role": "user"}]), param="messages[0].content")
simple("chat: content 5", "POST", CHAT, chat(messages=[{"role": "user", "content": 5}]),
       param="messages[0].content")
simple("chat: content part image", "POST", CHAT,
       chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
       param="messages[0].content[0].type")
simple("chat: content part type 5", "POST", CHAT,
       chat(messages=[{"role": "user", "content": [{"type": 5, "text": "x"}]}]), param="messages[0].content[0].type")
simple("chat: content part text 5", "POST", CHAT,
       chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
       param="messages[0].content[0].text")
simple("chat: model 5", "POST", CHAT, chat(model=5), param="model")
simple("chat: temperature \"hot\"", "POST", CHAT, chat(temperature="hot"), param="temperature")
simple("chat: temperature -1", "POST", CHAT, chat(temperature=-1), param="temperature")
simple("chat: temperature 3", "POST", CHAT, chat(temperature=3), param="temperature")
simple("chat: top_p 2", "POST", CHAT, chat(top_p=2), param="top_p")
simple("chat: top_p -0.1", "POST", CHAT, chat(top_p=-0.1), param="top_p")
simple("chat: max_tokens \"10\"", "POST", CHAT, chat(max_tokens="10"), param="max_tokens")
simple("chat: max_tokens 1e12", "POST", CHAT, raw_body=b'{"messages": [{"role": "user", "content": "hi"}], '
                                                       b'"max_tokens": 1e12}', param="max_tokens")
simple("chat: max_tokens 10^12 (integer)", "POST", CHAT, chat(max_tokens=10 ** 12), param="max_tokens")
simple("chat: max_tokens 2^64 (beyond uint64)", "POST", CHAT, chat(max_tokens=2 ** 64), param="max_tokens")
simple("chat: max_tokens 0", "POST", CHAT, chat(max_tokens=0), param="max_tokens")
simple("chat: max_tokens -5", "POST", CHAT, chat(max_tokens=-5), param="max_tokens")
simple("chat: max_tokens 2.5", "POST", CHAT, chat(max_tokens=2.5), param="max_tokens")
simple("chat: max_completion_tokens true", "POST", CHAT, chat(max_completion_tokens=True),
       param="max_completion_tokens")
simple("chat: max_tokens beyond the context", "POST", CHAT, chat(max_tokens=1000), param="max_tokens",
       contains=(str(CONTEXT), "1000"))
simple("chat: n 1.5", "POST", CHAT, chat(n=1.5), param="n")
simple("chat: n 1000000", "POST", CHAT, chat(n=1000000), param="n")
simple("chat: n 0", "POST", CHAT, chat(n=0), param="n")
simple("chat: n \"2\"", "POST", CHAT, chat(n="2"), param="n")
simple("chat: stop 5", "POST", CHAT, chat(stop=5), param="stop")
simple("chat: stop [5]", "POST", CHAT, chat(stop=[5]), param="stop[0]")
simple("chat: stop [\"\"]", "POST", CHAT, chat(stop=[""]), param="stop")
simple("chat: stop 1000 strings", "POST", CHAT, chat(stop=["x"] * 1000), param="stop")
simple("chat: logit_bias []", "POST", CHAT, chat(logit_bias=[]), param="logit_bias")
simple("chat: logit_bias {\"-5\": 1}", "POST", CHAT, chat(logit_bias={"-5": 1}), param="logit_bias.-5")
simple("chat: logit_bias {\"999999\": 1}", "POST", CHAT, chat(logit_bias={"999999": 1}), param="logit_bias.999999")
simple("chat: logit_bias {\"abc\": 1}", "POST", CHAT, chat(logit_bias={"abc": 1}), param="logit_bias.abc")
simple("chat: logit_bias {\"5\": \"x\"}", "POST", CHAT, chat(logit_bias={"5": "x"}), param="logit_bias.5")
simple("chat: logit_bias {\"5\": 1000}", "POST", CHAT, chat(logit_bias={"5": 1000}), param="logit_bias.5")
simple("chat: stream \"yes\"", "POST", CHAT, chat(stream="yes"), param="stream")
simple("chat: stream 1", "POST", CHAT, chat(stream=1), param="stream")
simple("chat: stream_options without stream", "POST", CHAT, chat(stream_options={"include_usage": True}),
       param="stream_options")
simple("chat: stream_options 5", "POST", CHAT, chat(stream=True, stream_options=5), param="stream_options")
simple("chat: include_usage \"y\"", "POST", CHAT, chat(stream=True, stream_options={"include_usage": "y"}),
       param="stream_options.include_usage")
simple("chat: top_logprobs without logprobs", "POST", CHAT, chat(top_logprobs=3), param="top_logprobs")
simple("chat: top_logprobs with logprobs false", "POST", CHAT, chat(logprobs=False, top_logprobs=3),
       param="top_logprobs")
simple("chat: top_logprobs 50", "POST", CHAT, chat(logprobs=True, top_logprobs=50), param="top_logprobs")
simple("chat: logprobs \"yes\"", "POST", CHAT, chat(logprobs="yes"), param="logprobs")
simple("chat: seed \"x\"", "POST", CHAT, chat(seed="x"), param="seed")
simple("chat: seed -2", "POST", CHAT, chat(seed=-2), param="seed")
simple("chat: presence_penalty 5", "POST", CHAT, chat(presence_penalty=5), param="presence_penalty")
simple("chat: frequency_penalty \"x\"", "POST", CHAT, chat(frequency_penalty="x"), param="frequency_penalty")
simple("chat: top_k \"a\"", "POST", CHAT, chat(top_k="a"), param="top_k")
simple("chat: min_p 2", "POST", CHAT, chat(min_p=2), param="min_p")
simple("chat: repeat_penalty 0", "POST", CHAT, chat(repeat_penalty=0), param="repeat_penalty")
simple("chat: mirostat 1", "POST", CHAT, chat(mirostat=1), param="mirostat")
simple("chat: ignore_eos \"no\"", "POST", CHAT, chat(ignore_eos="no"), param="ignore_eos")
simple("chat: dry_sequence_breakers [5]", "POST", CHAT, chat(dry_sequence_breakers=[5]),
       param="dry_sequence_breakers[0]")
simple("chat: prompt longer than the context", "POST", CHAT,
       chat(messages=[{"role": "user", "content": "the cat sat on the mat. " * 200}]), param="messages",
       contains=(str(CONTEXT),))

# Completions.
simple("completions: missing prompt", "POST", COMPL, {"max_tokens": 1}, param="prompt")
simple("completions: prompt 5", "POST", COMPL, compl(prompt=5), param="prompt")
simple("completions: prompt \"\"", "POST", COMPL, compl(prompt=""), param="prompt")
simple("completions: prompt []", "POST", COMPL, compl(prompt=[]), param="prompt")
simple("completions: prompt [[1, 2], \"a\"] (mixed batch)", "POST", COMPL, compl(prompt=[[1, 2], "a"]), param="prompt")
simple("completions: prompt [[1, 2], []]", "POST", COMPL, compl(prompt=[[1, 2], []]), param="prompt",
       contains=("prompt[1]",))
simple("completions: prompt [[1, -1]]", "POST", COMPL, compl(prompt=[[1, -1]]), param="prompt[0][1]")
simple("completions: 2049 prompts", "POST", COMPL, compl(prompt=["a"] * 2049), param="prompt", contains=("2048",))
simple("completions: more prompts than queue + parallel", "POST", COMPL, compl(prompt=["a"] * 2000), param="prompt",
       contains=("--max-queue",))
simple("completions: one prompt of a batch too long", "POST", COMPL, compl(prompt=[[5], [5] * 300]), param="prompt[1]",
       contains=("prompt 1", "300"))
simple("completions: max_tokens -1", "POST", COMPL, compl(max_tokens=-1), param="max_tokens")
simple("completions: prompt token -1", "POST", COMPL, compl(prompt=[1, -1]), param="prompt[1]")
simple("completions: prompt token 1e9", "POST", COMPL, compl(prompt=[10 ** 9]), param="prompt[0]")
simple("completions: prompt token \"x\"", "POST", COMPL, compl(prompt=[1, "x"]), param="prompt[1]")
simple("completions: logprobs 50", "POST", COMPL, compl(logprobs=50), param="logprobs")
simple("completions: logprobs true", "POST", COMPL, compl(logprobs=True), param="logprobs")
simple("completions: echo \"x\"", "POST", COMPL, compl(echo="x"), param="echo")
simple("completions: max_tokens 1e12", "POST", COMPL, raw_body=b'{"prompt": "hi", "max_tokens": 1e12}',
       param="max_tokens")
simple("completions: 300 prompt tokens > context 256", "POST", COMPL, compl(prompt=[5] * 300), param="prompt",
       contains=(str(CONTEXT), "300"))
simple("completions: 256 prompt tokens = context", "POST", COMPL, compl(prompt=[5] * CONTEXT), param="prompt",
       contains=(str(CONTEXT),))
simple("completions: 200 prompt + 100 max_tokens > context", "POST", COMPL,
       compl(prompt=[5] * 200, max_tokens=100), param="max_tokens", contains=(str(CONTEXT), "200", "100", "300"))

# Methods and routes.
simple("GET /v1/chat/completions", "GET", CHAT, status=405)
simple("PUT /v1/completions", "PUT", COMPL, body={"prompt": "x"}, status=405)
simple("DELETE /v1/models", "DELETE", "/v1/models", status=405)
simple("POST /v1/models", "POST", "/v1/models", body={}, status=405)
simple("GET /nope", "GET", "/nope", status=404)
simple("POST /v1/nope", "POST", "/v1/nope", body={}, status=404)
simple("GET /v1/chat/completions/ (trailing slash)", "GET", CHAT + "/", status=404)

# Utility routes.
simple("tokenize: no content", "POST", "/tokenize", {}, param="content")
simple("tokenize: content 5", "POST", "/tokenize", {"content": 5}, param="content")
simple("tokenize: add_special \"y\"", "POST", "/tokenize", {"content": "x", "add_special": "y"}, param="add_special")
simple("tokenize: invalid JSON", "POST", "/tokenize", raw_body=b"{")
simple("detokenize: no tokens", "POST", "/detokenize", {}, param="tokens")
simple("detokenize: tokens \"abc\"", "POST", "/detokenize", {"tokens": "abc"}, param="tokens")
simple("detokenize: token -1", "POST", "/detokenize", {"tokens": [1, -1]}, param="tokens[1]")
simple("detokenize: token 1e9 (float)", "POST", "/detokenize", raw_body=b'{"tokens": [1e9]}', param="tokens[0]")
simple("detokenize: token 10^9", "POST", "/detokenize", {"tokens": [10 ** 9]}, param="tokens[0]")
simple("detokenize: token 2^64-1", "POST", "/detokenize", {"tokens": [2 ** 64 - 1]}, param="tokens[0]")
simple("detokenize: token \"x\"", "POST", "/detokenize", {"tokens": ["x"]}, param="tokens[0]")
simple("apply-template: no messages", "POST", "/apply-template", {}, param="messages")
simple("apply-template: messages \"x\"", "POST", "/apply-template", {"messages": "x"}, param="messages")
# /apply-template checks a body as /v1/chat/completions does: the same params.
simple("apply-template: messages [5]", "POST", "/apply-template", {"messages": [5]}, param="messages[0]")
simple("apply-template: content 5", "POST", "/apply-template", {"messages": [{"role": "user", "content": 5}]},
       param="messages[0].content")
simple("apply-template: content part type 5", "POST", "/apply-template",
       {"messages": [{"role": "user", "content": [{"type": 5, "text": "x"}]}]}, param="messages[0].content[0].type")
simple("apply-template: add_generation_prompt 1", "POST", "/apply-template",
       {"messages": MSG, "add_generation_prompt": 1}, param="add_generation_prompt")
simple("embeddings: no input", "POST", "/v1/embeddings", {}, param="input")
simple("embeddings: input \"\"", "POST", "/v1/embeddings", {"input": ""}, param="input")
simple("embeddings: input []", "POST", "/v1/embeddings", {"input": []}, param="input")
simple("embeddings: input [[]]", "POST", "/v1/embeddings", {"input": [[]]}, param="input[0]")
simple("embeddings: input 5", "POST", "/v1/embeddings", {"input": 5}, param="input")
simple("embeddings: input [\"a\", \"\"]", "POST", "/v1/embeddings", {"input": ["a", ""]}, param="input[1]")
simple("embeddings: input [\"a\", 5]", "POST", "/v1/embeddings", {"input": ["a", 5]}, param="input[1]")
simple("embeddings: input [1, -1]", "POST", "/v1/embeddings", {"input": [1, -1]}, param="input[1]")
simple("embeddings: input [[1], [1e9]]", "POST", "/v1/embeddings", raw_body=b'{"input": [[1], [1e9]]}',
       param="input[1][0]")
simple("embeddings: 300 tokens > context", "POST", "/v1/embeddings", {"input": [5] * 300}, param="input",
       contains=(str(CONTEXT), "300"))
simple("embeddings: encoding_format \"hex\"", "POST", "/v1/embeddings", {"input": "a", "encoding_format": "hex"},
       param="encoding_format")


# Framing: sizes, URI, chunked bodies.
BIG = 10 * 1024 * 1024


@case("Range is ignored: API answers and UI files come whole, with 200")
def _range_ignored():
    status, headers, body = http("GET", "/v1/models", headers={"Range": "bytes=0-10"})
    check(status == 200 and "content-range" not in headers, f"/v1/models with Range: {status} {headers}")
    check(json.loads(body)["object"] == "list", f"/v1/models cut: {body[:80]!r}")
    status, headers, body = http("POST", COMPL, compl(max_tokens=2), headers={"Range": "bytes=0-10"})
    check(status == 200 and json.loads(body)["object"] == "text_completion", f"completion with Range: {status}")
    whole = http("GET", "/")
    many = ",".join(["0-"] * 2000)  # a multipart body of 2000 copies, were ranges honoured
    status, headers, body = http("GET", "/", headers={"Range": f"bytes={many}"})
    check(status == 200 and body == whole[2], f"/ with 2000 ranges: {status}, {len(body)} bytes")
    check(headers.get("accept-ranges") == "none", f"Accept-Ranges: {headers.get('accept-ranges')!r}")


@case("Range on a request refused for its framing: the error object whole, no bytes past it")
def _range_on_framing_error():
    # A GET with a body is a framing error, answered by a content provider before routing: the
    # range must not reach it (it read past its string: heap bytes to the client).
    head = (f"GET /v1/models HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nContent-Length: 5\r\n"
            "Range: bytes=200-300\r\nConnection: close\r\n\r\nhello").encode()
    with connect() as s:
        s.sendall(head)
        raw = read_all(s, until_eof=True)
    status, headers, body = parse_response(raw)
    check(400 <= status < 500 and "content-range" not in headers, f"{status} {headers}")
    check(raw.endswith(body) and json.loads(body)["error"]["message"], f"body {body[:120]!r} of {len(raw)} bytes")


@case("10 MB body with Content-Length -> 413")
def _big_content_length():
    head = (f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {BIG}\r\n\r\n").encode()
    with connect() as s:
        s.sendall(head)
        # The limit is known from the header: the answer should come without the body being sent.
        s.settimeout(3)
        first = b""
        try:
            first = s.recv(65536)
        except socket.timeout:
            pass
        if not first:  # the server waits for the body: send it (bounded), then read
            s.settimeout(10)
            try:
                chunk = b'{"prompt": "' + b"x" * (1 << 20)
                for _ in range(BIG // len(chunk) + 1):
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        resp = parse_response(first + read_all(s))
    expect_error(resp, 413, "")


def chunked_upload(total, chunk_size=64 * 1024):
    """POSTs `total` bytes with Transfer-Encoding: chunked, reading the answer on another thread."""
    head = (f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    payload = b'{"prompt": "' + b"x" * (chunk_size - 12)
    frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
    got = {}
    with connect() as s:
        reader = threading.Thread(target=lambda: got.setdefault("raw", read_all(s)), daemon=True)
        reader.start()
        try:
            s.sendall(head)
            for _ in range(total // len(payload) + 1):
                if "raw" in got:
                    break
                s.sendall(frame)
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        reader.join(15)
    return parse_response(got.get("raw", b""))


@case("10 MB chunked body -> 413")
def _big_chunked():
    expect_error(chunked_upload(BIG), 413, "")


@case("small chunked body is read (400 for the bad prompt JSON, not 413)")
def _small_chunked():
    body = b'{"prompt": "hi", "max_tokens": -5}'
    data = (f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    data += b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    expect_error(exchange(data), 400, "max_tokens")


@case("9 KB URI -> 4xx")
def _long_uri():
    status, _, body = http("GET", "/health?x=" + "a" * 9000)
    check(400 <= status < 500, f"status {status} {body[:200]!r}")


@case("9 KB header line -> 4xx")
def _long_header():
    status, _, body = http("GET", "/health", headers={"X-Long": "a" * 9000})
    check(400 <= status < 500, f"status {status} {body[:200]!r}")


def raw_post(length_lines, body=b""):
    head = f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    return exchange((head + "".join(f"{line}\r\n" for line in length_lines) + "\r\n").encode() + body)


@case("POST without Content-Length is an empty body, answered at once (400: not JSON)")
def _no_length():
    start = time.monotonic()
    expect_error(raw_post([]), 400, "", contains=("not valid JSON",))
    # Not after waiting --timeout for a body that was never announced.
    check(time.monotonic() - start < READ_TIMEOUT_S, "answered only after the read timeout")


@case("a Content-Length that is not one whole number -> 400 at once")
def _bad_lengths():
    for lines in (["Content-Length: abc"], ["Content-Length: -5"], ["Content-Length: 99999999999999999999"],
                  ["Content-Length: 2", "Content-Length: 3"]):
        start = time.monotonic()
        try:
            expect_error(raw_post(lines, b"{}"), 400, "", contains=("Content-Length",))
        except Failure as e:
            raise Failure(f"{lines}: {e}")
        check(time.monotonic() - start < READ_TIMEOUT_S, f"{lines}: answered only after the read timeout")


# A request whose framing is refused, sent on a keep-alive connection and followed by a second,
# valid request in what would be its body: one answer, then the connection closes. (Were it kept,
# the rest would be read as the next request and run: request smuggling behind a proxy.)
SMUGGLED = (f"POST /tokenize HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 16\r\n\r\n{{\"content\":\"hi\"}}").encode()


def answered_once_then_closed(head, status, contains):
    with connect() as s:
        s.sendall(head.encode())
        time.sleep(0.2)
        try:
            s.sendall(SMUGGLED)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = read_all(s, deadline_s=READ_TIMEOUT_S + 8, until_eof=True)
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3})", raw, re.M)
    check(len(statuses) == 1, f"answers {statuses} (the rest of the request was run as another): {raw[:300]!r}")
    expect_error(parse_response(raw), status, "", contains)


for name, head, status, contains in [
    ("Content-Length abc", "Content-Length: abc\r\n", 400, ("whole number",)),
    ("two Content-Lengths", "Content-Length: 3\r\nContent-Length: 3\r\n", 400, ("more than one",)),
    ("Transfer-Encoding and Content-Length", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", 400,
     ("both",)),
    ("Transfer-Encoding gzip", "Transfer-Encoding: gzip\r\n", 400, ("chunked",)),
    ("two Transfer-Encodings", "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400, ("once",)),
    ("Transfer-Encoding chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400,
     ("once",)),
]:
    CASES.append((f"keep-alive POST with {name}: answered once, then closed",
                  lambda head=head, status=status, contains=contains: answered_once_then_closed(
                      f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\n{head}\r\n", status, contains)))
CASES.append(("keep-alive GET with a body: answered once, then closed",
              lambda: answered_once_then_closed(
                  f"GET /health HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n", 400,
                  ("takes no body",))))


@case("keep-alive chunked body past --max-body: 413 once, then closed")
def _chunked_too_large_keep_alive():
    payload = b'{"prompt": "' + b"x" * (MAX_BODY + 1000)
    frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    head = (f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    got = {}
    with connect() as s:
        reader = threading.Thread(target=lambda: got.setdefault("raw", read_all(s, deadline_s=READ_TIMEOUT_S + 8,
                                                                                until_eof=True)), daemon=True)
        reader.start()
        try:
            s.sendall(head + frame + SMUGGLED)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.join(READ_TIMEOUT_S + 10)
    raw = got.get("raw", b"")
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3})", raw, re.M)
    check(len(statuses) == 1, f"answers {statuses}: {raw[:300]!r}")
    expect_error(parse_response(raw), 413, "")


@case("PUT without a length: 405 at once")
def _put_no_length():
    start = time.monotonic()
    expect_error(exchange(f"PUT {CHAT} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()), 405, "")
    check(time.monotonic() - start < READ_TIMEOUT_S, "answered only after the read timeout")


@case("garbage request line -> 400 or closed")
def _garbage():
    with connect() as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        raw = read_all(s, deadline_s=6)
    if raw:
        status, _, _ = parse_response(raw)
        check(status == 400, f"status {status}")


def stall(data):
    """Sends `data` and stalls. Meanwhile another client must get /health 200. The server must answer
    (a 4xx) or hang up about --timeout seconds later, and close the connection. Returns when it did."""
    with connect() as s:
        s.sendall(data)
        start = time.monotonic()
        ok, detail = health_ok()  # another client, while this one stalls
        check(ok, "while a client stalled: " + detail)
        limit = READ_TIMEOUT_S + 5 + 3  # httplib keeps the connection for its keep-alive (5 s) after a 4xx
        s.settimeout(limit)
        first = b""
        try:
            first = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            pass
        answered = time.monotonic() - start
        check(answered > READ_TIMEOUT_S - 0.5, f"answered after {answered:.1f} s, before --timeout {READ_TIMEOUT_S}")
        check(answered < READ_TIMEOUT_S + 2, f"nothing after {answered:.1f} s (--timeout {READ_TIMEOUT_S})")
        raw = first + (read_all(s, deadline_s=limit, until_eof=True) if first else b"")
        closed = time.monotonic() - start
        check(closed < limit, f"still open after {closed:.1f} s")
        status = None
        if raw:
            status, _, _ = parse_response(raw)
            check(400 <= status < 500, f"status {status}")
        print(f"    (answered {status} after {answered:.1f} s, closed after {closed:.1f} s)")
        return status


@case("slow partial headers: 4xx/close after --timeout, others served meanwhile")
def _slowloris():
    stall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Le".encode())


@case("slow partial body: 4xx/close after --timeout")
def _slow_body():
    stall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
          f"Content-Length: 100\r\n\r\n{{\"prompt\": ".encode())


@case("stalled body whose first bytes are valid JSON is not run")
def _stalled_valid_prefix():
    before = metric("ember_generated_tokens_total")
    body = b'{"prompt": "hi", "max_tokens": 5}'
    status = stall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body) + 50}\r\n\r\n".encode() + body)
    check(status != 200, "the truncated body was run as a request (200)")
    check(metric("ember_generated_tokens_total") == before, "tokens were generated for a truncated body")


# Early disconnects.
@case("disconnect before the body")
def _close_before_body():
    with connect() as s:
        s.sendall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 40\r\n\r\n".encode())
    time.sleep(0.2)
    wait_kv_idle()


@case("disconnect mid-body")
def _close_mid_body():
    with connect() as s:
        s.sendall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 40\r\n\r\n{{\"prompt\": \"hel".encode())
    time.sleep(0.2)
    wait_kv_idle()


@case("disconnect mid-body after a valid JSON prefix: nothing is run")
def _close_mid_body_valid_prefix():
    before = metric("ember_generated_tokens_total")
    body = b'{"prompt": "hi", "max_tokens": 5}'
    with connect() as s:
        s.sendall(f"POST {COMPL} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body) + 50}\r\n\r\n".encode() + body)
    end = time.monotonic() + READ_TIMEOUT_S + 2
    while time.monotonic() < end:
        check(metric("ember_generated_tokens_total") == before,
              "tokens were generated for a body cut short by a disconnect")
        time.sleep(0.2)
    wait_kv_idle()


def stream_and_close(path, body, reset=False):
    """Starts a streaming completion, reads its first data event, closes. Returns the event."""
    raw_body = json.dumps(body).encode()
    data = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw_body)}\r\n\r\n").encode() + raw_body
    s = connect()
    try:
        s.sendall(data)
        buf = b""
        end = time.monotonic() + 10
        while b"data: " not in buf or b"\n\n" not in buf[buf.find(b"data: "):]:
            check(time.monotonic() < end, f"no SSE event within 10 s: {buf[:300]!r}")
            chunk = s.recv(4096)
            check(chunk, f"closed before the first event: {buf[:300]!r}")
            buf += chunk
        check(buf.startswith(b"HTTP/1.1 200"), f"not a 200: {buf[:200]!r}")
        check(b"text/event-stream" in buf.partition(b"\r\n\r\n")[0], "not text/event-stream")
        if reset:  # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return buf
    finally:
        s.close()


def check_cancelled_on_disconnect(path, body, reset=False):
    """Streams, disconnects after the first event, and checks the KV is freed and the request was
    cancelled (n=4 x 200 tokens asked: far fewer generated)."""
    before = metric("ember_generated_tokens_total")
    stream_and_close(path, body, reset=reset)
    wait_kv_idle()
    generated = metric("ember_generated_tokens_total") - before
    print(f"    (generated {generated:.0f} of up to 800 tokens before the cancel took effect)")
    check(generated < 400, f"{generated:.0f} of 800 tokens generated: the disconnect did not cancel")


@case("disconnect mid-stream (chat), KV freed")
def _close_mid_stream():
    check_cancelled_on_disconnect(CHAT, chat(stream=True, max_tokens=200, ignore_eos=True, n=4))


@case("reset (RST) mid-stream (completions), KV freed")
def _reset_mid_stream():
    check_cancelled_on_disconnect(COMPL, compl(stream=True, max_tokens=200, ignore_eos=True, n=4), reset=True)


@case("several streams dropped at once, KV freed")
def _close_many():
    before = metric("ember_generated_tokens_total")
    threads = [threading.Thread(target=stream_and_close,
                                args=(COMPL, compl(stream=True, max_tokens=150, ignore_eos=True)), daemon=True)
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    wait_kv_idle()
    generated = metric("ember_generated_tokens_total") - before
    check(generated < 450, f"{generated:.0f} of 900 tokens generated: the disconnects did not cancel")


@case("a valid request still works (200)")
def _valid():
    status, _, body = http("POST", COMPL, compl(max_tokens=3))
    check(status == 200, f"status {status} {body[:200]!r}")
    obj = json.loads(body)
    check(obj["object"] == "text_completion" and obj["usage"]["completion_tokens"] >= 1, f"body {obj!r}")


# --- driver -----------------------------------------------------------------------------------

def main():
    global PORT, CONTEXT
    args = sys.argv[1:]
    only = None
    if "-k" in args:
        i = args.index("-k")
        only = args[i + 1]
        del args[i:i + 2]
    here = os.path.dirname(os.path.abspath(__file__))
    source_dir = os.environ.get("EMBER_SOURCE_DIR") or os.path.dirname(os.path.dirname(here))
    binary = args[0] if args else os.environ.get("EMBER_BIN") or os.path.join(source_dir, "build", "me", "bin",
                                                                              "ember")
    model = os.path.join(source_dir, "models", "ember-tiny.gguf")
    proc, PORT, tail = ember_serve.start(binary, ["-m", model, "--max-body", str(MAX_BODY), "--timeout",
                                                  str(READ_TIMEOUT_S)])
    try:
        _, _, body = http("GET", "/v1/models")
        n_ctx = json.loads(body)["data"][0]["meta"]["n_ctx"]
        if n_ctx != CONTEXT:
            sys.exit(f"ember-tiny's context is {n_ctx}, the corpus expects {CONTEXT}")

        for name, fn in CASES:
            if only and only not in name:
                continue
            t0 = time.monotonic()
            try:
                fn()
                ok, detail = health_ok()
                detail = "" if ok else "afterwards " + detail
            except Failure as e:
                ok, detail = False, str(e)
            except (OSError, ValueError, KeyError) as e:
                ok, detail = False, f"{type(e).__name__}: {e}"
            if proc.poll() is not None:
                ok, detail = False, f"the server exited with {proc.returncode}"
            RESULTS.append((name, ok, detail))
            print(f"{'ok  ' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.2f} s){': ' + detail if detail else ''}",
                  flush=True)
            if proc.poll() is not None:
                break

        # SIGTERM: a clean exit 0, soon, even while a client keeps a half-sent request alive with a
        # byte now and then (each read succeeds within --timeout, so httplib's thread would wait on
        # it for ever).
        stop_dribble = threading.Event()

        def dribble():
            try:
                with connect() as s:
                    s.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n".encode())
                    while not stop_dribble.wait(READ_TIMEOUT_S / 4):
                        s.sendall(b"X")
            except OSError:
                pass

        dribbler = threading.Thread(target=dribble, daemon=True)
        dribbler.start()
        time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "none (killed after 15 s)"
        stop_dribble.set()
        ok = code == 0
        RESULTS.append(("SIGTERM exits 0", ok, "" if ok else f"exit code {code}"))
        print(f"{'ok  ' if ok else 'FAIL'} SIGTERM exits 0{'' if ok else ': exit code ' + str(code)}")
        if not ok:
            print("server stderr tail:\n" + b"".join(tail[-20:]).decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
