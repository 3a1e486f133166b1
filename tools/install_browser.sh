#!/usr/bin/env bash
# Install Debian's Chromium (for the site's browser test, tests/test_docs.py), when absent.
# Usage: tools/install_browser.sh            (idempotent; does nothing when it is present)
set -euo pipefail

DEBS="chromium"

for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "browser present: $(command -v "$b")"
    exit 0
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "error: Chromium is missing and cannot be installed:" >&2
    echo "       installing Debian packages needs root or password-less sudo. Run as root:" >&2
    echo "       apt-get update && apt-get install -y $DEBS" >&2
    exit 2
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Chromium is missing and this is not a Debian-like system (no apt-get)." >&2
  exit 2
fi
echo "Installing Chromium from Debian's packages: $DEBS"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $DEBS >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "error: chromium was installed but is not on PATH" >&2; exit 2; }
echo "Chromium installed: $(chromium --version 2>/dev/null | head -n1)"
