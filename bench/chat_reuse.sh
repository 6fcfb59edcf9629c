#!/usr/bin/env bash
# Time to first token of each turn of a 5-turn `ember chat`, with the conversation's KV cache
# reused (the default) and without (--no-prefix-reuse). Replies are capped at N tokens (-n) so
# random-weight models (ember synth) work too.
# Usage: bench/chat_reuse.sh MODEL [N=32] [THREADS=2] [EMBER=build/release/bin/ember]
set -euo pipefail
model=$1 n=${2:-32} threads=${3:-2} ember=${4:-build/release/bin/ember}
input=$(printf '%s\n/stats\n' \
  "Tell me about the sea." "Why is it salty?" "What lives in the deepest parts?" \
  "How do those animals see in the dark?" "Summarize everything so far in two sentences.")
for mode in reuse no-reuse; do
  flags=(-m "$model" --temp 0 -n "$n" -t "$threads" -c 4096)
  [ "$mode" = no-reuse ] && flags+=(--no-prefix-reuse)
  echo "== $mode"
  "$ember" chat "${flags[@]}" <<<"$input" 2>&1 >/dev/null |
    awk '/^prompt /{prompt=$2; reused=$4} /^first /{turn++; printf "turn %d: prompt %s tokens, %s reused, first token after %s ms\n", turn, prompt, reused, $4}'
done
