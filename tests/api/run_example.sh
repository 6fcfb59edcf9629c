#!/bin/sh
# Runs an example program on a model and checks its output starts the expected text; skips (77)
# when the model (../shared/data) is absent; the output must be at least MIN_BYTES long.
# Usage: run_example.sh PROGRAM MODEL EXPECTED_PREFIX [MIN_BYTES]
program=$1 model=$2 expected=$3 min_bytes=${4:-0}
if [ ! -f "$model" ]; then
  if [ "${EMBER_REQUIRE_SHARED_DATA:-0}" = 1 ]; then
    echo "FAIL: $model not found (EMBER_REQUIRE_SHARED_DATA=1)"
    exit 1
  fi
  echo "SKIP: $model not found; ../shared/data absent"
  exit 77
fi
out=$("$program" "$model") || exit 1
echo "$out"
case "$out" in
  "$expected"*) ;;
  *) echo "FAIL: expected the output to start with: $expected"; exit 1 ;;
esac
if [ "${#out}" -lt "$min_bytes" ]; then
  echo "FAIL: expected at least $min_bytes bytes of output"
  exit 1
fi
