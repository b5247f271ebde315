#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver (the browser the report's tests drive over
# WebDriver) when /usr/bin/chromium or /usr/bin/chromedriver is missing. Idempotent: does
# nothing when both are there; prints what it did either way. Runs apt-get as root, or through
# sudo when not root. Used by tests/report_browser.rs and .ci/run.
# Usage: scripts/chromium.sh
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?'); $(/usr/bin/chromedriver --version 2>/dev/null | head -n1 || echo '?')"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "error: chromium is missing and installing it needs root (apt-get); run: apt-get install chromium chromium-driver" >&2
    exit 1
fi

echo "installing chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
    [[ -x "$bin" ]] || { echo "error: $bin is still missing after apt-get install" >&2; exit 1; }
done
echo "installed: $(/usr/bin/chromium --version); $(/usr/bin/chromedriver --version | head -n1)"
