#!/usr/bin/env bash
# Make `docker compose` (Compose v2) available to this user where the machine's Docker packages
# ship only the old `docker-compose` 1.x: take Debian's Compose v2 package (from the machine's own
# Debian mirror, suite trixie; a static Go binary) and put it in ~/.docker/cli-plugins.
set -euo pipefail
if docker compose version >/dev/null 2>&1; then docker compose version; exit 0; fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "compose-plugin: no Debian mirror in this machine's apt configuration" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb $mirror trixie main" > "$work/sources.list"
opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$work/lists"
      -o Dir::Cache::archives="$work")
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download docker-compose 2>/dev/null)
dpkg -x "$work"/docker-compose_*.deb "$work/x"
plugin=$(find "$work/x" -type f -name docker-compose -perm -u+x | head -1)
mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
install -m 0755 "$plugin" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
docker compose version
