#!/usr/bin/env bash
# Install a Java runtime for the Spark tests (tests/marginals/test_spark_backend.py).
#
# pyspark comes from PyPI with the Python packages; the JVM it starts in local mode comes from
# Debian's packages (default-jre-headless: OpenJDK 17 on Debian 12). This script only makes sure a
# `java` executable exists; it does not download any JDK build of its own, nor start anything.
# Idempotent: does nothing when `java` is already on PATH (or under $JAVA_HOME/bin).
set -euo pipefail

have_java() {
    if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
        echo "${JAVA_HOME}/bin/java"
        return 0
    fi
    if command -v java >/dev/null 2>&1; then
        command -v java
        return 0
    fi
    return 1
}

if path="$(have_java)"; then
    echo "install-java: Java already present at $path"
    exit 0
fi

source "$(dirname "$0")/apt-install.sh"
apt_install install-java default-jre-headless

if path="$(have_java)"; then
    echo "install-java: Java installed at $path ($("$path" -version 2>&1 | head -n 1))"
else
    echo "install-java: package installed but no java executable on PATH" >&2
    exit 1
fi
