#!/usr/bin/env bash
# Makes a self-signed certificate for the default configuration (var/tls/{cert,key}.pem) when
# none exists. For real use, point tls_cert/tls_key at a certificate from your CA.
set -eu
cd "$(dirname "$0")/.."
dir=var/tls
[ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && exit 0
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=mx.localhost" \
    -addext "subjectAltName=DNS:mx.localhost,DNS:localhost,IP:127.0.0.1,IP:::1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 600 "$dir/key.pem"
echo "make-cert: created a self-signed certificate in $dir" >&2
