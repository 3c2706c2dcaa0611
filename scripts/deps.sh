#!/usr/bin/env bash
# Installs the Debian packages Postern needs to build and test, only those missing.
# Idempotent: a second run with everything present does nothing and touches no network.
set -eu

BUILD_PKGS="gcc make pkg-config libevent-dev libssl-dev libcrypt-dev libunbound-dev zlib1g-dev libidn2-dev libsystemd-dev libpsl-dev publicsuffix openssl"
TEST_PKGS="libcmocka-dev systemd python3-dkim python3-nacl ldnsutils dovecot-lmtpd dovecot-imapd python3-pytest python3-aiosmtpd python3-milter unbound swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl clang libclang-rt-14-dev clang-tidy cppcheck valgrind e2fsprogs mount"

BENCH_PKGS="postfix"  # for smtp-source, smtp-sink and a private Postfix instance (bench/)

missing=""
for pkg in $BUILD_PKGS ${DEPS_WITH_TESTS:+$TEST_PKGS} ${DEPS_WITH_BENCH:+$BENCH_PKGS}; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

create_user() { # the unprivileged account the server becomes when started as root
    if [ "$(id -u)" -eq 0 ] && ! getent passwd postern >/dev/null; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postern
        echo "deps: created system user postern" >&2
    fi
}

if [ -z "$missing" ]; then
    create_user
    exit 0
fi

echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# postfix must not configure or start a system mail service: the benchmark runs its own instance
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
create_user
