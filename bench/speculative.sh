#!/bin/sh
# Speculative decoding's speed-up with `ember run` on the bundled models: decode tok/s (the median
# of RUNS runs) without speculation, with ember-tiny-draft and with prompt lookup, at temperature 0
# and 0.8, on a plain prompt and on a repetitive one (a passage of the held-out text, then its first
# words again: the model goes on copying, prompt lookup's case). Prints one table.
# Usage: bench/speculative.sh [EMBER_BINARY] [RUNS] [THREADS]
set -eu
EMBER=${1:-build/release/bin/ember}
RUNS=${2:-5}
THREADS=${3:-0}
MODELS=$(dirname "$0")/../models
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$MODELS/ember-tiny-heldout.txt" "$TMP/repeat.txt" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
start = text.index("And Joseph fell upon")
passage = text[start:start + 1100]
passage = passage[:passage.rindex(".") + 1]
open(sys.argv[2], "w", encoding="utf-8").write(passage + "\n\n" + passage[:passage.index(":") + 1])
PY
printf 'And the LORD said unto Moses' > "$TMP/plain.txt"

# decode tok/s of one run (the stats' decode line, piped form: "decode N tokens T ms R tok/s").
rate() {
  "$EMBER" run -m "$MODELS/ember-tiny.gguf" -n 200 --ignore-eos -c 1024 -t "$THREADS" --seed 1 "$@" 2>&1 >/dev/null |
    awk '$1 == "decode" { print $(NF-1) }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
accept() {
  "$EMBER" run -m "$MODELS/ember-tiny.gguf" -n 200 --ignore-eos -c 1024 -t "$THREADS" --seed 1 "$@" 2>&1 >/dev/null |
    awk '$1 == "drafts" { print $NF }'
}

printf '| prompt | temp | method | decode tok/s (median of %s) | speed-up | drafts kept |\n|---|---|---|---:|---:|---:|\n' "$RUNS"
for prompt in plain repeat; do
  for temp in 0 0.8; do
    base=""
    for method in none draft lookup; do
      case $method in
        none) extra="" ;;
        draft) extra="--model-draft $MODELS/ember-tiny-draft.gguf --draft-max 4" ;;
        lookup) extra="--draft-max 8" ;;
      esac
      # shellcheck disable=SC2086
      r=$(for _ in $(seq "$RUNS"); do rate -f "$TMP/$prompt.txt" --temp "$temp" $extra; done | median)
      [ -z "$base" ] && base=$r
      # shellcheck disable=SC2086
      kept=$([ "$method" = none ] && echo "-" || accept -f "$TMP/$prompt.txt" --temp "$temp" $extra)
      printf '| %s | %s | %s | %.0f | %.2fx | %s |\n' "$prompt" "$temp" "$method" "$r" "$(echo "$r $base" | awk '{ print $1 / $2 }')" "$kept"
    done
  done
done
