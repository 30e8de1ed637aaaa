#!/usr/bin/env bash
# Install a Debian PostgreSQL server (initdb, pg_ctl, postgres) for the test-suite.
#
# The tests start their own throw-away cluster (tests/postgres.py); this script only makes sure
# the server binaries exist under /usr/lib/postgresql/<version>/bin. It does not start, configure
# or touch any cluster. Idempotent: does nothing when the binaries are already there.
set -euo pipefail

have_server() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if dir="$(have_server)"; then
    echo "install-postgres: PostgreSQL server already present in $dir"
    exit 0
fi

source "$(dirname "$0")/apt-install.sh"
apt_install install-postgres postgresql

if dir="$(have_server)"; then
    echo "install-postgres: PostgreSQL server installed in $dir"
else
    echo "install-postgres: package installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
