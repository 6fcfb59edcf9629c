#!/usr/bin/env python3
"""lm-evaluation-harness's local-completions protocol against a real `ember serve` (Python stdlib).

The harness cannot be installed here (no PyPI), so this walks its requests and its parsing as its
source (lm_eval/models/openai_completions.py, api_models.py, utils.py) does them:
  1. remote-tokenizer detection: GET /tokenizer_info has eos_token; POST /tokenize
     {prompt, add_special_tokens: false} gives a token list;
  2. loglikelihood: context and continuation encoded apart, sent as token-id arrays, a batch of
     several in one request: {prompt: [[ids]...], max_tokens: 1, logprobs: 1, echo: true,
     temperature: 0, seed}; then, per choice sorted by index, sum(token_logprobs[ctxlen:-1]) and
     is_greedy = every continuation token is the best of its top_logprobs;
  3. generate_until: {prompt: [[ids]...], max_tokens, temperature 0, stop, seed}.
It checks the answers against a second route to the same numbers: a continuation made of the
model's own greedy tokens must be greedy, and its summed logprob must equal the logprobs the model
reported while generating those tokens (no echo).
Usage: eval_harness.py path/to/ember   (exit 0 when every check passes)
"""
import json
import os
import sys
import urllib.error
import urllib.request

import ember_serve

FAILURES = []


def check(cond, message):
    if not cond:
        FAILURES.append(message)
        print("FAIL:", message)


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def parse_logprobs(out, ctxlens):
    """The harness's LocalCompletionsAPI.parse_logprobs."""
    res = []
    for choice, ctxlen in zip(sorted(out["choices"], key=lambda c: c["index"]), ctxlens):
        assert ctxlen > 0
        logprobs = sum(choice["logprobs"]["token_logprobs"][ctxlen:-1])
        tokens_logprobs = choice["logprobs"]["token_logprobs"][ctxlen:-1]
        top_logprobs = choice["logprobs"]["top_logprobs"][ctxlen:-1]
        is_greedy = True
        for tok, top in zip(tokens_logprobs, top_logprobs):
            if tok != max(top.values()):
                is_greedy = False
                break
        res.append((logprobs, is_greedy))
    return res


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source_dir = os.environ.get("EMBER_SOURCE_DIR") or os.path.dirname(os.path.dirname(here))
    binary = sys.argv[1]
    proc, port, _ = ember_serve.start(binary, ["-m", os.path.join(source_dir, "models", "ember-tiny.gguf"),
                                               "--deterministic"])
    try:
        # 1. The remote tokenizer.
        status, info = call(port, "GET", "/tokenizer_info")
        check(status == 200 and isinstance(info, dict) and "eos_token" in info, f"/tokenizer_info: {status} {info}")

        def encode(text):
            status, body = call(port, "POST", "/tokenize", {"prompt": text, "add_special_tokens": False})
            check(status == 200 and isinstance(body.get("tokens"), list), f"/tokenize: {status} {body}")
            return body["tokens"]

        eos_id = encode(info["eos_token"])[0]
        check(isinstance(eos_id, int), f"eos id {eos_id!r}")

        contexts = ["And it came to pass, when the king", "In the beginning God created",
                    "Blessed are the poor in spirit"]
        # The model's own greedy continuations (token ids and logprobs), to score them back.
        greedy = []
        for ctx in contexts:
            status, out = call(port, "POST", "/v1/completions",
                               {"prompt": [encode(ctx)], "max_tokens": 6, "temperature": 0, "logprobs": 1,
                                "seed": 1234})
            check(status == 200, f"greedy generation: {status} {out}")
            lp = out["choices"][0]["logprobs"]
            greedy.append((lp["tokens"], lp["token_logprobs"]))

        def encode_pair(context, continuation):
            """The harness's _encode_pair: the whole encoded once, split after the context's tokens."""
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces > 0:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            whole_enc = encode(context + continuation)
            context_enc = encode(context)
            return context_enc, whole_enc[len(context_enc):]

        # 2. loglikelihood: context + continuation in one batch request, as the harness sends it.
        requests, ctxlens = [], []
        for ctx, (pieces, _) in zip(contexts, greedy):
            context_enc, continuation_enc = encode_pair(ctx, "".join(pieces))
            requests.append(context_enc + continuation_enc)
            ctxlens.append(len(context_enc))
        # A continuation the model would not choose, for the other answer.
        context_enc, continuation_enc = encode_pair(contexts[0], " zebra zebra")
        requests.append(context_enc + continuation_enc)
        ctxlens.append(len(context_enc))
        status, out = call(port, "POST", "/v1/completions",
                           {"model": "ember-tiny", "prompt": requests, "temperature": 0, "max_tokens": 1,
                            "logprobs": 1, "seed": 1234, "echo": True})
        check(status == 200, f"loglikelihood request: {status} {out}")
        if status == 200:
            check(len(out["choices"]) == len(requests), f"{len(out['choices'])} choices for {len(requests)}")
            for choice, req in zip(sorted(out["choices"], key=lambda c: c["index"]), requests):
                check(len(choice["logprobs"]["token_logprobs"]) == len(req) + 1,
                      f"echo gives every prompt token and the generated one: "
                      f"{len(choice['logprobs']['token_logprobs'])} vs {len(req)} + 1")
            results = parse_logprobs(out, ctxlens)
            choices = sorted(out["choices"], key=lambda c: c["index"])
            compared = 0
            for (total, is_greedy), (pieces, generated), ctx, choice, ctxlen in zip(results, greedy, contexts,
                                                                                     choices, ctxlens):
                # The sums meet where the text re-encodes to the tokens the model generated.
                if choice["logprobs"]["tokens"][ctxlen:-1] != pieces:
                    continue
                compared += 1
                check(is_greedy, f"{ctx!r}: the model's own continuation is greedy")
                expected = sum(generated)
                check(abs(total - expected) < 1e-4,
                      f"{ctx!r}: echo scores {total} the continuation the model generated at {expected}")
            check(compared >= 2, f"only {compared} continuations re-encoded to the generated tokens")
            wrong_total, wrong_greedy = results[-1]
            check(not wrong_greedy, "' zebra zebra' is not the greedy continuation")
            check(wrong_total < results[0][0], f"' zebra zebra' ({wrong_total}) scores below the greedy text")

        # loglikelihood_rolling sends whole documents the same way; max_tokens 0 is OpenAI's way.
        doc = encode("And it came to pass, when the king heard it, that he rent his clothes.")
        status, out = call(port, "POST", "/v1/completions",
                           {"prompt": [doc], "max_tokens": 0, "logprobs": 0, "echo": True, "temperature": 0})
        check(status == 200 and len(out["choices"][0]["logprobs"]["token_logprobs"]) == len(doc),
              f"max_tokens 0 scores the document alone: {status} {out}")

        # 3. generate_until, batched.
        status, out = call(port, "POST", "/v1/completions",
                           {"prompt": [encode(c) for c in contexts], "model": "ember-tiny", "max_tokens": 6,
                            "temperature": 0, "stop": ["\n\n"], "seed": 1234})
        check(status == 200 and [c["index"] for c in out["choices"]] == [0, 1, 2],
              f"generate_until batch: {status} {out}")
        if status == 200:
            for choice, (pieces, _) in zip(out["choices"], greedy):
                check(choice["text"] == "".join(pieces), f"batched greedy text {choice['text']!r} vs {pieces}")
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{'FAILED' if FAILURES else 'passed'}: lm-evaluation-harness protocol ({len(FAILURES)} failures)")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
