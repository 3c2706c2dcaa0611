#!/usr/bin/env bash
# Installs the Debian packages Postern needs to build and test, only those missing.
# Idempotent: a second run with everything present does nothing and touches no network.
set -eu

BUILD_PKGS="gcc make pkg-config libevent-dev"
TEST_PKGS="libcmocka-dev python3-pytest swaks clang libclang-rt-14-dev"

missing=""
for pkg in $BUILD_PKGS ${DEPS_WITH_TESTS:+$TEST_PKGS}; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
