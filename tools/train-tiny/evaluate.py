"""Evaluates an exported GGUF in PyTorch, as the reference that ember's tests compare against.

    python3 tools/train-tiny/evaluate.py models/ember-tiny.gguf

Reads the file back (our own minimal GGUF reader: F32 / F16 tensors) into model.Llama, so it
checks what the file holds, then writes into <name>.eval.json next to it:
- held_out_perplexity: llama-perplexity's procedure, as `ember perplexity -f <heldout> --ctx 256`
  runs it, in float32 with float64 sums (and a sha256 of the token ids, `<s>` first);
- greedy: the continuation of a fixed prompt, argmax at each step (what `ember run --temp 0` gives).
"""
import argparse
import hashlib
import json
import math
import os
import struct

import numpy as np
import sentencepiece as spm
import torch
from torch.nn import functional as F

import model as llama

# The fixed prompt of `make demo` and of the golden-output test.
PROMPT = "And it came to pass, when the king"
GREEDY_TOKENS = 64

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf(path):
    """(metadata dict, {tensor name: float32 numpy array in PyTorch's [out, in] order})."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values[0]

    def string():
        nonlocal pos
        n = take("<Q")
        pos += n
        return data[pos - n:pos].decode("utf-8")

    def value(kind):
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            elem, count = take("<I"), take("<Q")
            return [value(elem) for _ in range(count)]
        return take(_SCALARS[kind])

    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    if version != 3:
        raise ValueError(f"{path}: GGUF version {version}, expected 3")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, ne, take("<I"), take("<Q")))
    alignment = meta.get("general.alignment", 32)
    base = -(-pos // alignment) * alignment
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        if ggml_type not in (0, 1):
            raise ValueError(f"{path}: tensor {name} is GGML type {ggml_type}; this reader takes F32 and F16 only")
        dtype = {0: np.float32, 1: np.float16}[ggml_type]
        count = int(np.prod(ne))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=base + offset)
        tensors[name] = array.reshape(list(reversed(ne))).astype(np.float32)
    return meta, tensors


def model_from_gguf(path):
    meta, t = read_gguf(path)
    cfg = llama.Config(vocab=meta["llama.vocab_size"], dim=meta["llama.embedding_length"],
                       layers=meta["llama.block_count"], heads=meta["llama.attention.head_count"],
                       ffn=meta["llama.feed_forward_length"], context=meta["llama.context_length"],
                       norm_eps=meta["llama.attention.layer_norm_rms_epsilon"],
                       rope_base=meta["llama.rope.freq_base"])
    net = llama.Llama(cfg)
    state = {"embed.weight": t["token_embd.weight"], "norm.weight": t["output_norm.weight"]}
    names = dict(attn_norm="attn_norm", attn_q="wq", attn_k="wk", attn_v="wv", attn_output="wo", ffn_norm="ffn_norm",
                 ffn_gate="w_gate", ffn_up="w_up", ffn_down="w_down")
    for i in range(cfg.layers):
        for gguf_name, torch_name in names.items():
            state[f"blocks.{i}.{torch_name}.weight"] = t[f"blk.{i}.{gguf_name}.weight"]
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return net.eval(), meta


@torch.no_grad()
def perplexity(net, ids, bos, ctx=256):
    """llama-perplexity's procedure, as `ember perplexity` runs it: the token stream (with <s> first)
    cut into ctx-token chunks, each chunk's first token replaced by <s>, only the predictions of the
    second half scored (rows ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1). Float64 sums."""
    tokens = np.concatenate(([bos], ids))
    # What `ember tokenize --ids` prints for the text, hashed: the test checks ember's tokens with it.
    ids_sha256 = hashlib.sha256(" ".join(str(int(t)) for t in tokens).encode()).hexdigest()
    chunks = len(tokens) // ctx
    nll, nll2, count = 0.0, 0.0, 0
    for i in range(chunks):
        chunk = torch.from_numpy(tokens[i * ctx:(i + 1) * ctx].astype(np.int64)).clone()
        chunk[0] = bos
        logp = F.log_softmax(net(chunk[None])[0].double(), dim=-1)
        first = ctx // 2
        picked = -logp[first:ctx - 1].gather(1, chunk[first + 1:ctx, None])[:, 0]
        nll += picked.sum().item()
        nll2 += (picked ** 2).sum().item()
        count += picked.numel()
    mean, mean2 = nll / count, nll2 / count
    ppl = math.exp(mean)
    return dict(ppl=ppl, ppl_error=ppl * math.sqrt((mean2 - mean * mean) / (count - 1)), nll=mean,
                tokens_scored=count, chunks=chunks, ctx=ctx, tokens=len(tokens), token_ids_sha256=ids_sha256)


@torch.no_grad()
def greedy(net, prompt_ids, n):
    ids = list(prompt_ids)
    for _ in range(n):
        logits = net(torch.tensor([ids[-net.cfg.context:]]))[0, -1]
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt_ids):]


def read_text(path):
    """The file's text with one trailing newline dropped, as `ember perplexity -f` reads it."""
    text = open(path, encoding="utf-8").read()
    return text[:-1] if text.endswith("\n") else text


def evaluate(gguf_path, tokenizer_path, heldout_path, quiet=False):
    """Measures the file and records the results in <name>.eval.json beside it (kept fields stay)."""
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    net, meta = model_from_gguf(gguf_path)
    held_ids = np.array(sp.encode(read_text(heldout_path)))
    result = perplexity(net, held_ids, sp.bos_id())
    prompt_ids = [sp.bos_id()] + sp.encode(PROMPT)
    generated = greedy(net, prompt_ids, GREEDY_TOKENS)
    text = PROMPT + sp.decode(prompt_ids[1:] + generated)[len(PROMPT):]
    if not quiet:
        print(f"{meta['general.name']}: held-out PPL {result['ppl']:.4f} +/- {result['ppl_error']:.4f}")
        print(text)
    eval_path = os.path.splitext(gguf_path)[0] + ".eval.json"
    info = json.load(open(eval_path, encoding="utf-8")) if os.path.exists(eval_path) else {}
    info["held_out_perplexity"] = result
    info["greedy"] = dict(prompt=PROMPT, tokens=GREEDY_TOKENS, prompt_ids=prompt_ids, ids=generated, text=text)
    with open(eval_path, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf")
    parser.add_argument("--tokenizer", help="default: ember-tiny-tokenizer.model beside the GGUF")
    parser.add_argument("--heldout", help="default: ember-tiny-heldout.txt beside the GGUF")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = os.path.dirname(os.path.abspath(args.gguf))
    evaluate(args.gguf, args.tokenizer or os.path.join(folder, "ember-tiny-tokenizer.model"),
             args.heldout or os.path.join(folder, "ember-tiny-heldout.txt"))


if __name__ == "__main__":
    main()
