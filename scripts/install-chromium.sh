#!/usr/bin/env bash
# Install Debian's Chromium for the test-suite (tests/release/test_html_chromium.py).
#
# The tests start their own headless browser with a throw-away profile and talk to it over the
# DevTools protocol on a pipe; this script only makes sure an executable exists. It does not
# download any browser build of its own (no Playwright/Puppeteer download): the package comes from
# the distribution's archive. Idempotent: does nothing when a Chromium is already on PATH (or named
# by $DPSYNTH_CHROMIUM).
set -euo pipefail

have_chromium() {
    local name
    if [[ -n "${DPSYNTH_CHROMIUM:-}" && -x "${DPSYNTH_CHROMIUM}" ]]; then
        echo "$DPSYNTH_CHROMIUM"
        return 0
    fi
    for name in chromium chromium-browser google-chrome-stable google-chrome chrome-headless-shell; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if path="$(have_chromium)"; then
    echo "install-chromium: Chromium already present at $path"
    exit 0
fi

# Debian ships the browser as 'chromium'; Ubuntu's 'chromium-browser' is a snap stub that does not
# work in containers, so only the Debian package is tried here.
source "$(dirname "$0")/apt-install.sh"
apt_install install-chromium chromium

if path="$(have_chromium)"; then
    echo "install-chromium: Chromium installed at $path ($("$path" --version 2>/dev/null | tail -n 1))"
else
    echo "install-chromium: package installed but no chromium executable on PATH" >&2
    exit 1
fi
