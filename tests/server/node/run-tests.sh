#!/bin/sh
# ctest's runner for the Node tests: checks for Node >= 20, the npm packages and (for the UI tests)
# Chromium, then `node --test FILES`.
# Node >= 20 is not a Debian 12 package (bookworm has 18, too old for the openai client): without it
# the tests are skipped (exit 77) with a message, except under CI=true, where they must run.
set -eu
dir=$(dirname "$0")
skip() {
  echo "$1" >&2
  if [ "${CI:-}" = true ]; then exit 1; fi
  echo "skipped: the Node tests need Node >= 20 and the UI's Chromium (docs/server.md, Tests)" >&2
  exit 77
}
command -v node >/dev/null 2>&1 || skip "node not found"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || skip "node $(node --version) is older than 20"
for package in openai playwright-core; do
  if [ ! -f "$dir/node_modules/$package/package.json" ]; then
    echo "$dir/node_modules/$package is missing: run scripts/install-deps.sh (make deps)" >&2
    exit 1
  fi
done
# The chat UI's tests drive Debian's Chromium (scripts/install-deps.sh installs it).
case "$*" in
  *ui.test.mjs*)
    chromium=${EMBER_CHROMIUM:-/usr/bin/chromium}
    [ -x "$chromium" ] || skip "no Chromium at $chromium (install the Debian package chromium, or set EMBER_CHROMIUM)"
    ;;
esac
exec node --test --test-reporter=spec "$@"
