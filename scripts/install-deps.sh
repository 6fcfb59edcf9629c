#!/usr/bin/env bash
# Installs every Debian package ember's build, tests and tools need; idempotent, as root.
# `--train` adds what tools/train-tiny needs to retrain the bundled models (PyTorch, ~1 GB).
set -euo pipefail

packages=(
  # build
  build-essential make cmake ninja-build ccache git procps
  g++-12 clang-14 libclang-rt-14-dev clang-format-14
  # libraries (DESIGN.md §9)
  libfmt-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev
  # the KV cache's prefix hashes; `ember serve`'s HTTP (a compiled library on Debian)
  libxxhash-dev libcpp-httplib-dev
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-regex python3-jinja2 python3-jsonschema pkgconf
  # the JSON Schema converter's conformance test (the official suite: drafts 4, 6 and 7)
  json-schema-test-suite
  # the chat UI's browser tests (Playwright drives Debian's Chromium headless; fixed fonts keep the
  # screenshots stable)
  chromium fonts-dejavu-core
  # `ember chat` line editing (BSD-licensed editline)
  libedit-dev
)
if [ "${1:-}" = "--train" ]; then
  packages+=(
    # tools/train-tiny: PyTorch (CPU), SentencePiece, and the corpus (the King James Bible)
    python3-torch python3-sentencepiece python3-numpy bible-kjv
    # Debian's torch calls the system BLAS (libblas.so.3); OpenBLAS is ~10x the reference BLAS
    libopenblas0-pthread
  )
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--train]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  # dpkg-query prints "install ok installed" only for fully installed packages.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The `ember serve` tests' npm packages (tests/server/node: the official `openai` client and
# playwright-core for the chat UI), as the invoking user; npm ci whenever any installed package differs
# from the lock. Node >= 20 is not a Debian 12 package (bookworm has 18), so it is not installed here.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
node_dir=tests/server/node
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: no node/npm: skipping $node_dir (the Server* ctests need Node >= 20)" >&2
elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "install-deps: node $(node --version) is older than 20: skipping $node_dir (the Server* ctests need it)" >&2
elif [ "$(node -p "const lock = require('./$node_dir/package-lock.json').packages;
                   Object.entries(lock).filter(([k]) => k.startsWith('node_modules/')).every(([k, v]) => {
                     try { return require('./$node_dir/' + k + '/package.json').version === v.version }
                     catch { return false } })")" != true ]; then
  echo "install-deps: npm ci in $node_dir" >&2
  # --prefer-offline: the lock has no 'resolved' URLs here, so --offline alone fails on a cold cache.
  # Under sudo, as the user who ran it: a root-owned node_modules would block their own npm later.
  as_user=()
  if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    as_user=(sudo -u "$SUDO_USER" -H)
  fi
  "${as_user[@]}" npm ci --prefix "$node_dir" --no-audit --no-fund --prefer-offline ||
    echo "install-deps: warning: npm ci failed in $node_dir: the Server* ctests will fail until it succeeds" >&2
fi
