#!/usr/bin/env python3
"""Load generator for `ember serve` (or any OpenAI-compatible server): concurrent streaming clients.

Usage:
  server_load.py --url http://127.0.0.1:PORT [--clients 16] [--requests 64] [--prompt-tokens 64]
                 [--max-tokens 64] [--endpoint completions|chat] [--warmup 1] [--json] [--no-header]

Each of --clients threads takes the next of --requests requests until none is left, and sends it
streaming (`stream: true`, `stream_options.include_usage`, `ignore_eos: true`, `temperature` (0
unless --temperature; then `seed` is the request's index), `max_tokens`, and --extra's fields) over its own http.client connection (keep-alive between its requests). Prompts differ
per request (so the prefix cache does not skip their prefill), unless --prompt-file gives one text for all:
  completions: --prompt-tokens random token ids (exact length);
  chat:        one user message of about --prompt-tokens words (the template adds a few tokens).
Measured per request: TTFT = request sent -> first content chunk; ITL = between consecutive content
chunks (a token whose text is an incomplete UTF-8 sequence sends no chunk, so an ITL can span two
tokens); generated tokens = usage.completion_tokens of the final chunk.
Reported: aggregate generated tokens/s (all completion tokens / wall time from the first request
sent to the last one finished), requests/s, TTFT p50/p99, ITL p50/p99, and, from the server's
/metrics (ember's names; absent elsewhere), the mean running sequences sampled every 0.25 s and the
prefill/decode seconds spent during the run. One table row (with a header unless --no-header), or
one JSON object with --json. Python 3 stdlib only; exit 1 if any request failed.
"""
import argparse
import http.client
import json
import random
import re
import sys
import threading
import time
import urllib.parse

WORDS = ("time river stone light garden window music paper winter morning story silver forest "
         "market letter bridge summer island candle mirror").split()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Target:
    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        if u.scheme != "http":
            sys.exit("--url must be http://HOST:PORT")
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout
        self.prefix = u.path.rstrip("/")

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def get(self, path):
        c = self.connection()
        try:
            c.request("GET", self.prefix + path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()


def metrics(target):
    try:
        status, body = target.get("/metrics")
    except OSError:
        return {}
    if status != 200:
        return {}
    out = {}
    for m in re.finditer(rb"^(ember_[a-z_]+) ([0-9.eE+-]+)$", body, re.M):
        out[m.group(1).decode()] = float(m.group(2))
    return out


def make_body(args, index, n_vocab):
    rng = random.Random(index * 7919 + 1)
    body = {"max_tokens": args.max_tokens, "temperature": args.temperature, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    if args.temperature > 0:
        body["seed"] = index
    if args.model:
        body["model"] = args.model
    body.update(args.extra)
    if args.prompt_text is not None and args.endpoint == "completions":
        body["prompt"] = args.prompt_text
    elif args.prompt_text is not None:
        body["messages"] = [{"role": "user", "content": args.prompt_text}]
    elif args.endpoint == "completions":
        hi = max(2, min(n_vocab, 30000))
        body["prompt"] = [rng.randrange(min(100, hi - 1), hi) for _ in range(args.prompt_tokens)]
    else:
        text = " ".join(rng.choice(WORDS) for _ in range(max(1, args.prompt_tokens - 8)))
        body["messages"] = [{"role": "user", "content": text}]
    return body


class Result:
    __slots__ = ("ok", "error", "ttft", "itl", "tokens", "start", "end")

    def __init__(self):
        self.ok, self.error, self.ttft, self.itl, self.tokens = False, "", None, [], 0
        self.start = self.end = 0.0


def run_one(conn_box, target, path, body):
    """One streaming request on conn_box[0] (reconnecting when needed)."""
    res = Result()
    payload = json.dumps(body).encode()
    for attempt in range(2):  # a keep-alive connection the server closed meanwhile: retry once
        if conn_box[0] is None:
            conn_box[0] = target.connection()
        conn = conn_box[0]
        res.start = time.perf_counter()
        try:
            conn.request("POST", target.prefix + path, body=payload,
                         headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            break
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
            conn.close()
            conn_box[0] = None
            if attempt == 1:
                res.error = f"{type(e).__name__}: {e}"
                res.end = time.perf_counter()
                return res
    try:
        if resp.status != 200:
            res.error = f"HTTP {resp.status}: {resp.read()[:200]!r}"
            return res
        last = None
        done = False
        for _ in range(1 << 22):
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue  # blank separators and ":" heartbeats
            data = line[6:].strip()
            if data == b"[DONE]":
                done = True
                break
            event = json.loads(data)
            if "error" in event:
                res.error = f"stream error: {event['error']}"
                break
            if event.get("usage"):
                res.tokens = event["usage"].get("completion_tokens", 0)
            for choice in event.get("choices") or []:
                if choice.get("finish_reason") is not None:
                    continue
                delta = choice.get("delta")
                if delta is not None:  # chat: the role chunk is not a token
                    if "role" in delta or not delta.get("content"):
                        continue
                elif not choice.get("text"):
                    continue
                now = time.perf_counter()
                if last is None:
                    res.ttft = now - res.start
                else:
                    res.itl.append(now - last)
                last = now
        resp.read()  # the rest (the last chunk) so the connection can be reused
        res.ok = done and not res.error
        if not done and not res.error:
            res.error = "stream ended without [DONE]"
    except (OSError, ValueError, http.client.HTTPException) as e:
        res.error = f"{type(e).__name__}: {e}"
        conn_box[0].close()
        conn_box[0] = None
    finally:
        res.end = time.perf_counter()
    return res


def run_level(args, target, n_vocab):
    path = "/v1/completions" if args.endpoint == "completions" else "/v1/chat/completions"
    # Warm-up requests, not counted (first-touch of the weights, thread-pool start).
    box = [None]
    for i in range(args.warmup):
        r = run_one(box, target, path, make_body(args, 10 ** 6 + i, n_vocab))
        if not r.ok:
            sys.exit(f"warm-up request failed: {r.error}")
    if box[0] is not None:
        box[0].close()

    lock = threading.Lock()
    next_index = [0]
    results = []
    samples = []
    stop_sampling = threading.Event()

    def sampler():
        while not stop_sampling.wait(0.25):
            m = metrics(target)
            if "ember_running_sequences" in m:
                samples.append(m["ember_running_sequences"])

    def client():
        conn_box = [None]
        while True:
            with lock:
                i = next_index[0]
                if i >= args.requests:
                    break
                next_index[0] += 1
            r = run_one(conn_box, target, path, make_body(args, i, n_vocab))
            with lock:
                results.append(r)
        if conn_box[0] is not None:
            conn_box[0].close()

    before = metrics(target)
    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    sampling = threading.Thread(target=sampler, daemon=True)
    t0 = time.perf_counter()
    sampling.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop_sampling.set()
    sampling.join()
    after = metrics(target)

    ok = [r for r in results if r.ok]
    ttft = [r.ttft for r in ok if r.ttft is not None]
    itl = [x for r in ok for x in r.itl]
    tokens = sum(r.tokens for r in ok)
    out = {
        "endpoint": args.endpoint, "clients": args.clients, "requests": len(results), "failed": len(results) - len(ok),
        "prompt_tokens": args.prompt_tokens, "max_tokens": args.max_tokens, "wall_s": round(wall, 3),
        "generated_tokens": tokens, "tokens_per_s": round(tokens / wall, 2), "requests_per_s": round(len(ok) / wall, 3),
        "ttft_p50_ms": round(percentile(ttft, 50) * 1e3, 1), "ttft_p99_ms": round(percentile(ttft, 99) * 1e3, 1),
        "itl_p50_ms": round(percentile(itl, 50) * 1e3, 2), "itl_p99_ms": round(percentile(itl, 99) * 1e3, 2),
        "errors": sorted({r.error for r in results if not r.ok})[:5],
    }
    if samples:
        out["mean_running"] = round(sum(samples) / len(samples), 2)
    for key in ("ember_prefill_seconds_total", "ember_decode_seconds_total", "ember_preemptions_total"):
        if key in before and key in after:
            out[key.replace("ember_", "").replace("_total", "")] = round(after[key] - before[key], 3)
    return out


COLUMNS = [("clients", "clients", "{}"), ("requests", "requests", "{}"), ("failed", "failed", "{}"),
           ("gen tok/s", "tokens_per_s", "{:.1f}"), ("req/s", "requests_per_s", "{:.2f}"),
           ("TTFT p50 ms", "ttft_p50_ms", "{:.0f}"), ("TTFT p99 ms", "ttft_p99_ms", "{:.0f}"),
           ("ITL p50 ms", "itl_p50_ms", "{:.1f}"), ("ITL p99 ms", "itl_p99_ms", "{:.1f}"),
           ("mean running", "mean_running", "{:.1f}"), ("prefill s", "prefill_seconds", "{:.1f}"),
           ("decode s", "decode_seconds", "{:.1f}"), ("wall s", "wall_s", "{:.1f}")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, default=1, help="concurrent streaming clients")
    ap.add_argument("--requests", type=int, default=None, help="total requests (default: 4 per client)")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--endpoint", choices=("completions", "chat"), default="completions")
    ap.add_argument("--model", default="", help="the request's model field (default: none)")
    ap.add_argument("--warmup", type=int, default=1, help="requests sent first, not counted")
    ap.add_argument("--timeout", type=float, default=600, help="socket timeout, seconds")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table row")
    ap.add_argument("--no-header", action="store_true", help="table row only")
    ap.add_argument("--prompt-file", help="every request's prompt: this file's text (instead of random ones)")
    ap.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (> 0: seed = request index)")
    ap.add_argument("--extra", default="{}", help='JSON object merged into each request, e.g. \'{"speculative": {"draft_max": 8}}\'')
    args = ap.parse_args()
    args.prompt_text = None
    if args.prompt_file:
        with open(args.prompt_file, encoding="utf-8") as f:
            args.prompt_text = f.read()
    args.extra = json.loads(args.extra)
    if not isinstance(args.extra, dict):
        sys.exit("--extra must be a JSON object")
    if args.requests is None:
        args.requests = 4 * args.clients
    if args.clients < 1 or args.requests < 1 or args.max_tokens < 1 or args.prompt_tokens < 1:
        sys.exit("--clients, --requests, --max-tokens and --prompt-tokens must be positive")
    target = Target(args.url, args.timeout)
    n_vocab = 32000
    try:
        status, body = target.get("/v1/models")
        if status == 200:
            n_vocab = int(json.loads(body)["data"][0].get("meta", {}).get("n_vocab", n_vocab))
    except (OSError, ValueError, KeyError, IndexError):
        pass
    out = run_level(args, target, n_vocab)
    if args.json:
        print(json.dumps(out))
    else:
        if not args.no_header:
            print("| " + " | ".join(c[0] for c in COLUMNS) + " |")
            print("|" + "|".join("---:" for _ in COLUMNS) + "|")
        print("| " + " | ".join(fmt.format(out[k]) if k in out else "–" for _, k, fmt in COLUMNS) + " |")
        for e in out["errors"]:
            print("error:", e, file=sys.stderr)
    return 1 if out["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
