"""Trains ember-tiny or ember-tiny-draft on the KJV corpus and exports them to GGUF.

    python3 tools/train-tiny/train.py --model tiny --out models/

Steps: corpus (corpus.py) -> tokenizer (tokenizer.py, trained once, shared by both models) ->
AdamW on random 256-token windows, each starting with <s> -> held-out loss every --eval-every
steps -> GGUF (F16 matrices) with the tokenizer -> <name>.eval.json: the run (shape, steps, wall
time, command, loss curve) and what evaluate.py measures on the written file (held-out perplexity
as `ember perplexity` computes it, the greedy continuation of the demo prompt).
Deterministic for a given seed and thread count (CPU only).
"""
import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time

# Torch's threads do the parallel work; a second, OpenBLAS pool on the same cores only fights them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 (after the environment is set)
import sentencepiece as spm
import torch
from torch.nn import functional as F

import corpus
import evaluate
import export_gguf
import model as llama
import tokenizer

PRESETS = {
    # name: model shape, steps and peak learning rate
    "tiny": dict(shape=dict(dim=384, layers=6, heads=6, ffn=1024), steps=1600, lr=1.5e-3),
    "draft": dict(shape=dict(dim=128, layers=4, heads=4, ffn=384), steps=1200, lr=3e-3),
}
VOCAB = 4096
CONTEXT = 256
BATCH = 16


def learning_rate(step, steps, peak, warmup=50):
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def random_batch(ids, generator, bos):
    """[BATCH, CONTEXT + 1] windows of the token stream, each starting with <s>."""
    starts = torch.randint(0, len(ids) - CONTEXT, (BATCH,), generator=generator)
    rows = [np.concatenate(([bos], ids[s:s + CONTEXT])) for s in starts.tolist()]
    return torch.from_numpy(np.stack(rows).astype(np.int64))


@torch.no_grad()
def held_out_loss(net, ids, bos, windows=24):
    """Mean next-token loss over evenly spaced held-out windows (a quick estimate while training)."""
    net.eval()
    starts = np.linspace(0, len(ids) - CONTEXT - 1, windows).astype(np.int64)
    batch = torch.from_numpy(np.stack([np.concatenate(([bos], ids[s:s + CONTEXT])) for s in starts]).astype(np.int64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(batch[:, :-1]).float()
    net.train()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=PRESETS, required=True)
    parser.add_argument("--out", default="models", help="folder for the GGUF, tokenizer and eval files")
    parser.add_argument("--steps", type=int, help="override the preset's step count")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--eval-every", type=int, default=50)
    args = parser.parse_args()
    preset = PRESETS[args.model]
    steps = args.steps or preset["steps"]
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()

    train_text, held_out_text, sentences = corpus.split_corpus(corpus.read_kjv())
    tok_prefix = os.path.join(args.out, "ember-tiny-tokenizer")
    if not os.path.exists(tok_prefix + ".model"):
        tokenizer.train_tokenizer(sentences, tok_prefix, VOCAB)
    sp = spm.SentencePieceProcessor(model_file=tok_prefix + ".model")
    held_out_path = os.path.join(args.out, "ember-tiny-heldout.txt")
    with open(held_out_path, "w", encoding="utf-8") as f:
        f.write(held_out_text)
    train_ids = np.array(sp.encode(train_text), dtype=np.int32)
    held_ids = np.array(sp.encode(held_out_text), dtype=np.int32)
    bos = sp.bos_id()

    cfg = llama.Config(vocab=VOCAB, context=CONTEXT, **preset["shape"])
    net = llama.Llama(cfg)
    decay = [p for p in net.parameters() if p.dim() == 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.1), dict(params=no_decay, weight_decay=0.0)],
                            lr=preset["lr"], betas=(0.9, 0.95))
    name = "ember-tiny" if args.model == "tiny" else "ember-tiny-draft"
    print(f"{name}: {net.parameter_count() / 1e6:.2f} M parameters, {len(train_ids)} training tokens, "
          f"{steps} steps of {BATCH}x{CONTEXT}", flush=True)

    generator = torch.Generator().manual_seed(args.seed)
    curve = []
    train_started = time.time()
    for step in range(steps + 1):
        if step % args.eval_every == 0 or step == steps:
            held = held_out_loss(net, held_ids, bos)
            point = dict(step=step, tokens=step * BATCH * CONTEXT, held_out_loss=round(held, 4),
                         minutes=round((time.time() - train_started) / 60, 2))
            curve.append(point)
            print(json.dumps(point), flush=True)
        if step == steps:
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, steps, preset["lr"])
        batch = random_batch(train_ids, generator, bos)
        # bfloat16 matrix products (oneDNN, AMX where the CPU has it): ~10x float32 on 2 cores.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net(batch[:, :-1]).float()
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % args.eval_every == 0:
            curve[-1]["train_loss"] = round(loss.item(), 4)  # this step's training batch, before the update
    train_minutes = (time.time() - train_started) / 60

    gguf_path = os.path.join(args.out, name + ".gguf")
    export_gguf.write_model(gguf_path, net, sp, name)
    info = dict(name=name, parameters=net.parameter_count(), config=dataclasses.asdict(cfg), steps=steps, batch=BATCH,
                context=CONTEXT, peak_lr=preset["lr"], seed=args.seed, threads=args.threads,
                train_tokens_seen=steps * BATCH * CONTEXT, train_corpus_tokens=int(len(train_ids)),
                train_minutes=round(train_minutes, 1), total_minutes=round((time.time() - started) / 60, 1),
                torch=torch.__version__, cpu=platform.processor() or platform.machine(),
                command=" ".join(["python3"] + sys.argv), loss_curve=curve)
    with open(os.path.join(args.out, name + ".eval.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    # The reference numbers come from the file as written (f16 matrices), read back.
    evaluate.evaluate(gguf_path, tok_prefix + ".model", held_out_path)
    print(f"wrote {gguf_path}")


if __name__ == "__main__":
    main()
