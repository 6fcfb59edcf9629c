#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds programs against it as a downstream
# project would: with find_package(ember) (tests/api/consumer) and with pkg-config (the C example).
# Usage: consumer_test.sh BUILD_DIR SOURCE_DIR WORK_DIR [MODEL]
set -euo pipefail
build=$1 source=$2 work=$3 model=${4:-}
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
test -f "$prefix/include/ember/ember.h" && test -f "$prefix/include/ember/ember.hpp"
# Only the public headers are installed, and they include nothing but each other and the standard
# library.
if grep -rn '#include "' "$prefix/include" | grep -v '#include "ember/'; then
  echo "an installed header includes a header that is not installed" >&2
  exit 1
fi
test ! -e "$prefix/include/ember/tensor_view.h"

cmake -S "$source/tests/api/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/configure.log"
cmake --build "$work/build" >"$work/build.log"
"$work/build/consumer_c"
"$work/build/consumer_cpp" | grep -qx "ember C++ API linked: q8_0 2 11 q8_0 16 8 [0-9]* io logits length" ||
  { "$work/build/consumer_cpp"; echo "consumer_cpp printed something else" >&2; exit 1; }

# pkg-config: the C example compiled and linked by hand, run with the installed library.
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name ember.pc)")
cc -std=c99 -Wall -Wextra -Werror -o "$work/generate_c" "$source/examples/generate_c.c" \
  $(pkg-config --cflags --libs ember)
export LD_LIBRARY_PATH=$(pkg-config --variable=libdir ember)

if [ -n "$model" ] && [ -f "$model" ]; then
  out=$("$work/build/consumer_cpp" "$model")
  echo "$out"
  [[ $out == ", there was a little girl named Lily"* ]]
  "$work/generate_c" "$model" | grep -q "Once upon a time, there was a little girl named Lily"
else
  echo "consumer_test: no model; ran the programs without one"
fi
echo "consumer: ok"
