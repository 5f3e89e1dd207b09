#!/usr/bin/env bash
# Fetches the browser bundle of mqtt.js (the MQTT client web apps use) from npm
# for the headless-Chromium WebSocket test, into .cache/mqttjs/ (not committed:
# it is another project's code). npm checks the tarball against the
# registry's integrity hash.
#   scripts/fetch-mqttjs.sh      prints the path of mqtt.min.js
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.16.0
dir=.cache/mqttjs/$version
if [[ ! -f "$dir/mqtt.min.js" ]]; then
  mkdir -p "$dir"
  tarball=$(cd "$dir" && npm pack --silent "mqtt@$version")
  tar -xzf "$dir/$tarball" -C "$dir" package/dist/mqtt.min.js package/LICENSE.md
  mv "$dir/package/dist/mqtt.min.js" "$dir/package/LICENSE.md" "$dir/"
  rm -rf "$dir/package" "$dir/$tarball"
fi
echo "$PWD/$dir/mqtt.min.js"
