#!/bin/sh
# ctest's runner for the Node tests: checks for Node >= 20 and the npm packages, then `node --test FILES`.
set -eu
dir=$(dirname "$0")
if ! command -v node >/dev/null 2>&1; then
  echo "node not found: these tests need Node >= 20 (not a Debian 12 package; see docs/plans/server-research.md)" >&2
  exit 1
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "node $(node --version) is too old: these tests need Node >= 20" >&2
  exit 1
fi
if [ ! -f "$dir/node_modules/openai/package.json" ]; then
  echo "$dir/node_modules/openai is missing: run scripts/install-deps.sh (make deps)" >&2
  exit 1
fi
exec node --test --test-reporter=spec "$@"
