#!/usr/bin/env bash
# Build benchmark images with Compose: `images/build.sh gptj bert` (the families they build FROM
# are stages of images/Dockerfile and come along). `docker compose build` does the same where
# builds reach PyPI; this script adds:
#
#   BASE_IMAGE=...     the OS + Python 3.11 image (default python:3.11-slim-bookworm)
#   LOCAL_WHEELS=1     install from images/wheels (images/wheelhouse.sh), served on
#                      127.0.0.1:$WHEELS_PORT (default 38517) during the build, for machines
#                      whose builds cannot reach PyPI
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: images/build.sh BENCHMARK... (e.g. images/build.sh gptj)" >&2; exit 2; }
cd "$(dirname "$0")"
base_image=${BASE_IMAGE:-python:3.11-slim-bookworm}
wheels=""
if [ -n "${LOCAL_WHEELS:-}" ]; then
  ./wheelhouse.sh >/dev/null
  port=${WHEELS_PORT:-38517}  # fixed: the URL is a build argument, and a new one would miss the layer cache
  python3 -m http.server --bind 127.0.0.1 "$port" --directory . >/dev/null 2>&1 &
  server=$!
  trap 'kill $server' EXIT
  sleep 1
  kill -0 "$server" 2>/dev/null || {
    echo "build.sh: could not serve the wheelhouse on 127.0.0.1:$port (port in use?); set WHEELS_PORT" >&2; exit 1; }
  wheels="http://127.0.0.1:$port/wheels/"  # the builds (host network) fetch from here
fi
cd ..
export BASE_IMAGE=$base_image WHEELS=$wheels
# one at a time: parallel builds of the same family stages would each install torch
for service in "$@"; do
  docker compose build --quiet "$service"
done
