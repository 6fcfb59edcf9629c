#!/bin/sh
# ctest's runner for the Node tests: checks for Node >= 20 and the npm packages, then `node --test FILES`.
# Node >= 20 is not a Debian 12 package (bookworm has 18, too old for the openai client): without it
# the tests are skipped (exit 77) with a message, except under CI=true, where they must run.
set -eu
dir=$(dirname "$0")
skip() {
  echo "$1" >&2
  if [ "${CI:-}" = true ]; then exit 1; fi
  echo "skipped: the openai-client tests need Node >= 20 (docs/server.md, Tests)" >&2
  exit 77
}
command -v node >/dev/null 2>&1 || skip "node not found"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || skip "node $(node --version) is older than 20"
if [ ! -f "$dir/node_modules/openai/package.json" ]; then
  echo "$dir/node_modules/openai is missing: run scripts/install-deps.sh (make deps)" >&2
  exit 1
fi
exec node --test --test-reporter=spec "$@"
