#!/usr/bin/env bash
# End-to-end test of `stancekit label`'s page in headless Chromium: labels
# three sentences with the keyboard, undoes one, kills and restarts the
# server, and checks the labels file (scripts/test-label-page.mjs does the
# driving, over the DevTools protocol; no npm package needed).
#
#   scripts/test-label-page.sh        # CHROMIUM=/path/to/chromium to choose one
#
# Without Chromium or node it prints a SKIPPED line and exits 0
# (`apt-get install chromium` provides the browser).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$CHROMIUM" ]; then
    echo "SKIPPED scripts/test-label-page.sh: no Chromium (apt-get install chromium)"
    exit 0
fi
if ! command -v node >/dev/null; then
    echo "SKIPPED scripts/test-label-page.sh: no node"
    exit 0
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "SKIPPED scripts/test-label-page.sh: node $(node --version) has no WebSocket (node 20 or newer)"
    exit 0
fi

cargo build --quiet
# A copy: another build in a shared target folder may replace the binary meanwhile.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "${CARGO_TARGET_DIR:-target}/debug/stancekit" "$work/stancekit"

# node 22 has WebSocket built in; node 20 and 21 behind a flag.
flags=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || flags=(--experimental-websocket)
node "${flags[@]}" scripts/test-label-page.mjs "$work/stancekit" "$CHROMIUM"
