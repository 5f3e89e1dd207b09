#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server: installs the
# packages, builds in release mode, makes a self-signed development certificate
# if server.crt/private.key are missing, and starts mqtt-server on its defaults
# (TLS on 127.0.0.1:8883, gRPC on [::1]:10000, data in ./data).
# Extra arguments go to mqtt-server, e.g. scripts/start.sh --non-tls -a 0.0.0.0:1883
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh release

cert=server.crt key=private.key
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -c|--cert) cert="${args[i+1]:-}" ;;
    -k|--key) key="${args[i+1]:-}" ;;
    --cert=*) cert="${args[i]#*=}" ;;
    --key=*) key="${args[i]#*=}" ;;
  esac
done
if [[ " ${args[*]-} " != *" --non-tls "* ]]; then
  scripts/gen-dev-cert.sh "$cert" "$key"
fi
exec build-release/mqtt-server "$@"
