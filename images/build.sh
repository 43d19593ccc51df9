#!/usr/bin/env bash
# Build images with Compose in FROM order: `images/build.sh gptj` builds base, pytorch, then gptj.
#
#   BASE_IMAGE=...     the OS + Python 3.11 image (default python:3.11-slim-bookworm)
#   LOCAL_WHEELS=1     install from images/<family>/wheels (images/wheelhouse.sh), served on
#                      127.0.0.1:$WHEELS_PORT (default 38517) during the build, for machines
#                      whose builds cannot reach PyPI
set -euo pipefail
cd "$(dirname "$0")"
base_image=${BASE_IMAGE:-python:3.11-slim-bookworm}
base_wheels="" torch_wheels=""
if [ -n "${LOCAL_WHEELS:-}" ]; then
  ./wheelhouse.sh >/dev/null
  port=${WHEELS_PORT:-38517}  # fixed: the URL is a build argument, and a new one would miss the layer cache
  python3 -m http.server --bind 127.0.0.1 "$port" --directory . >/dev/null 2>&1 &
  server=$!
  trap 'kill $server' EXIT
  sleep 1
  kill -0 "$server" 2>/dev/null || {
    echo "build.sh: could not serve the wheelhouse on 127.0.0.1:$port (port in use?); set WHEELS_PORT" >&2; exit 1; }
  base_wheels="http://127.0.0.1:$port/base/wheels/"   # URLs the builds (host network) fetch from
  torch_wheels="http://127.0.0.1:$port/pytorch/wheels/"
fi
cd ..
export BASE_IMAGE=$base_image BASE_WHEELS=$base_wheels PYTORCH_WHEELS=$torch_wheels
for service in base pytorch "$@"; do  # families first, in FROM order
  docker compose --profile images build --quiet "$service"
done
