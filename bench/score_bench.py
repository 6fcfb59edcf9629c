#!/usr/bin/env python3
"""Prompt scoring cost through `ember serve` (echo with logprobs, what evaluation harnesses ask).

Usage: score_bench.py PATH/TO/ember MODEL.gguf [ROUNDS=5] [PROMPT_TOKENS=512]

Starts `ember serve -m MODEL -t 2 -c 2048 --no-prefix-cache`, then alternates, ROUNDS times, one
prompt of PROMPT_TOKENS token ids (the same every time; no prefix cache, so each is computed):
  plain:  {prompt: ids, max_tokens: 1}                          (a prefill and one token)
  scored: {prompt: ids, max_tokens: 0, echo: true, logprobs: 1} (every row's logits, scored)
and prints the medians of the wall times and their ratio. Python 3 stdlib only.
"""
import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "server"))
import ember_serve  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, model = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 512
    proc, port, _ = ember_serve.start(binary, ["-m", model, "-t", "2", "-c", "2048", "--no-prefix-cache"])

    def post(body):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as resp:
            out = json.loads(resp.read())
        return time.perf_counter() - start, out

    try:
        ids = [(i * 37) % 5000 + 100 for i in range(n)]
        plain_body = {"prompt": ids, "max_tokens": 1, "temperature": 0}
        scored_body = {"prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 1}
        post(plain_body)  # warm-up
        plain, scored = [], []
        for _ in range(rounds):
            plain.append(post(plain_body)[0])
            t, out = post(scored_body)
            scored.append(t)
            assert len(out["choices"][0]["logprobs"]["token_logprobs"]) == n
    finally:
        proc.terminate()
        proc.wait(30)
    p, s = statistics.median(plain), statistics.median(scored)
    print(f"{os.path.basename(model)}: {n} tokens: prefill {p * 1000:.0f} ms ({n / p:.0f} tok/s), "
          f"scored {s * 1000:.0f} ms ({n / s:.0f} tok/s), {s / p:.2f}x")


if __name__ == "__main__":
    main()
