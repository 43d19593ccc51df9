#!/usr/bin/env bash
# Build a minimal Debian base image with debootstrap and `docker import` it, for machines that
# reach no image registry. The Debian mirror is read from this machine's own apt configuration.
#
#   images/bootstrap-base.sh [TAG]      (default TAG: mlperf-harness/debian:bookworm)
#
# Users with a registry do not need this: the images default to BASE_IMAGE=python:3.11-slim-bookworm.
set -euo pipefail
tag=${1:-mlperf-harness/debian:bookworm}
suite=bookworm   # its python3 is 3.11, the version the project is locked for

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "bootstrap-base: debootstrap needs root; run it as root (or with sudo)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }

# The first Debian mirror this machine's apt uses (deb822 .sources files or the classic sources.list)
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "bootstrap-base: no Debian mirror found in this machine's apt configuration" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from this machine's mirror into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$root" "$mirror" >/dev/null
# keep the image small: no apt lists or caches
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
  -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "built $tag"
