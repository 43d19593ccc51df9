#!/usr/bin/env bash
# Make `docker compose` (Compose v2) available to this user where the machine's Docker packages
# ship only the old `docker-compose` 1.x: Debian's Compose v2 package (a static Go binary) from
# the machine's own mirror, put in ~/.docker/cli-plugins.
set -euo pipefail
if docker compose version >/dev/null 2>&1; then docker compose version; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$(dirname "$0")/debian-package.sh" docker-compose "$work"
plugin=$(find "$work" -type f -name docker-compose -perm -u+x | head -1)
mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
install -m 0755 "$plugin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
docker compose version
