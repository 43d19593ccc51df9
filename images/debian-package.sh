#!/usr/bin/env bash
# Unpack a Debian package from the trixie suite of the apt mirror this system is configured with:
#   images/debian-package.sh PACKAGE DEST
# For the Docker client tools, which bookworm ships only as Compose 1 and a 20.10 CLI: Debian's
# trixie builds are Go binaries that need nothing newer than bookworm's glibc. Used on the host
# (images/compose-plugin.sh) and in the tests image (images/Dockerfile).
set -euo pipefail
package=$1 dest=$2
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "debian-package: no Debian mirror in this system's apt configuration" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb $mirror trixie main" > "$work/sources.list"
opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists="$work/lists"
      -o Dir::Cache::archives="$work" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download "$package" >/dev/null)
dpkg -x "$work/${package}"_*.deb "$dest"
