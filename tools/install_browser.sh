#!/usr/bin/env bash
# Debian's Chromium for the browser test (Playwright's own browser download cannot work offline).
# Never fails the test run: if it cannot install, it says why and tests/test_browser.py reports it.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "Chromium missing and not root (no password-less sudo): the browser test will be skipped." >&2; exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "Chromium missing and no apt-get here: install Chromium at /usr/bin/chromium for the browser test." >&2; exit 0
fi
echo "Installing Debian's chromium for the browser test..."
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } \
    >"$log" 2>&1; then
  echo "apt-get could not install chromium (the browser test will fail and say so):" >&2
  tail -n 20 "$log" >&2
fi
rm -f "$log"
exit 0
