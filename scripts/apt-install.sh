#!/usr/bin/env bash
# apt_install NAME PACKAGE: install one Debian package for the test set-up (as root, or with sudo).
# Sourced by scripts/install-postgres.sh and scripts/install-chromium.sh; NAME prefixes the messages.
apt_install() {
    local name="$1" package="$2"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: no apt-get; install the $package package by other means" >&2
        return 1
    fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "$name: not root and no sudo; cannot install the $package package" >&2
            return 1
        fi
    fi
    echo "$name: installing the Debian package '$package'"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}
