#!/usr/bin/env bash
# Make a self-signed development certificate for mqtt-server's TLS listener.
#
#   scripts/gen-dev-cert.sh [CERT [KEY]]     (defaults: server.crt private.key,
#                                             the server's own defaults)
#
# EC P-256 key, CN=localhost, subjectAltName DNS:localhost,IP:127.0.0.1, valid
# 825 days. The certificate is its own CA, so clients trust it with e.g.
# `mosquitto_sub --cafile CERT` or paho's `tls_set(ca_certs=CERT)`.
#
# Does nothing when both files exist. When only one exists, both are made anew,
# since a certificate and a key only work as a pair. For development and tests
# only: never use this certificate in production.
set -euo pipefail

if [[ $# -gt 2 || ${1:-} == -h || ${1:-} == --help ]]; then
  echo "usage: $0 [CERT [KEY]]   (defaults: server.crt private.key)" >&2
  exit 2
fi
cert=${1:-server.crt}
key=${2:-private.key}

if [[ -f $cert && -f $key ]]; then
  echo "gen-dev-cert: $cert and $key exist; nothing to do"
  exit 0
fi
if [[ -f $cert || -f $key ]]; then
  echo "gen-dev-cert: only one of $cert and $key exists; making both anew"
fi

command -v openssl >/dev/null || { echo "gen-dev-cert: openssl not found" >&2; exit 1; }
mkdir -p "$(dirname -- "$cert")" "$(dirname -- "$key")"

# Write next to the targets and rename at the end, so that an interrupted run
# never leaves a certificate without its key.
tmp_cert=$(mktemp "$cert.XXXXXX")
tmp_key=$(mktemp "$key.XXXXXX")
trap 'rm -f -- "$tmp_cert" "$tmp_key"' EXIT

if ! out=$(openssl req -x509 -new -nodes -sha256 -days 825 \
  -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$tmp_key" -out "$tmp_cert" \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" \
  2>&1); then
  echo "$out" >&2
  echo "gen-dev-cert: openssl failed; $cert and $key left as they were" >&2
  exit 1
fi

chmod 600 "$tmp_key"
chmod 644 "$tmp_cert"
mv -f -- "$tmp_key" "$key"
mv -f -- "$tmp_cert" "$cert"
trap - EXIT

echo "gen-dev-cert: made self-signed certificate $cert and key $key" \
  "(EC P-256, CN=localhost, SAN DNS:localhost,IP:127.0.0.1, 825 days)"
