#!/usr/bin/env bash
# Headless Chromium for the dashboard's real-browser tests: Debian's package (never a
# downloaded browser build), driven by the Playwright Python package from the test extra.
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq >&2 || true
  # fonts-noto-cjk: Korean labels render in the screenshots
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >&2
else
  echo "browser: /usr/bin/chromium is missing; install Debian's chromium package" >&2
  exit 1
fi
