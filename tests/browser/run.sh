#!/bin/sh
# run.sh - CTest entry of the browser test: installs playwright-core from
# package-lock.json into tests/browser/node_modules (npm ci, only when missing
# or not the locked version; it never downloads a browser), then runs the test
# against Debian's chromium. Usage: run.sh <jobqd> <screenshot dir>
set -e
cd "$(dirname "$0")"
for tool in node npm "${CHROMIUM:-/usr/bin/chromium}"; do
    command -v "$tool" >/dev/null || { echo "browser test: $tool is missing (run scripts/deps.sh)" >&2; exit 1; }
done
if ! node -e 'const l=require("./package-lock.json").packages["node_modules/playwright-core"].version;
              process.exit(require("./node_modules/playwright-core/package.json").version===l?0:1)' \
     2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
fi
exec node dashboard.test.mjs --jobqd "$1" --out "$2"
