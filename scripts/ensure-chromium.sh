#!/usr/bin/env bash
# The browser tests (tests/web/test_web_browser.py) drive Debian's Chromium at /usr/bin/chromium
# through Playwright. Install it when it is missing; `make test` and `.ci/run` both call this.
# Needs apt-get and root (or sudo); otherwise says what to run and fails.
# CHROMIUM and APT_GET may be overridden (the script's own test does).
set -euo pipefail
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
APT_GET="${APT_GET:-apt-get}"

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
echo "ensure-chromium: $CHROMIUM is missing; installing Debian's chromium for the browser tests"
if ! command -v "$APT_GET" >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get here: install Chromium at /usr/bin/chromium by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "ensure-chromium: not root and no sudo: run 'apt-get install -y chromium' as root" >&2
    exit 1
  fi
fi
$SUDO "$APT_GET" update -qq
DEBIAN_FRONTEND=noninteractive $SUDO "$APT_GET" install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: apt-get ran but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "ensure-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
