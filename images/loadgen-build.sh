#!/usr/bin/env bash
# Build a LoadGen release from its hash-locked PyPI sdist into a folder of its own, for a round
# whose LoadGen is not the installed one (harness/loadgen.py finds it there):
#
#   images/loadgen-build.sh 4.0.1 .venv/loadgen/4.0.1
#
# Needs Python 3.11 ($PYTHON, default python3.11) and a C++ compiler. WHEELS: a folder or URL with
# the locked files, for machines that cannot reach PyPI. The folder is replaced only once the build
# has succeeded.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: images/loadgen-build.sh VERSION TARGET_FOLDER" >&2; exit 2; }
version=$1 target=$2
locks=$(cd "$(dirname "$0")" && pwd)/loadgen
[ -f "$locks/$version.lock" ] || {
  echo "loadgen-build.sh: no lock for LoadGen $version in $locks (have: $(cd "$locks" && ls ./*.lock | grep -v build-tools))" >&2
  exit 2; }
command -v "${CXX:-g++}" >/dev/null || { echo "loadgen-build.sh: a C++ compiler (g++) is needed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work" "$target.partial"' EXIT
"${PYTHON:-python3.11}" -m venv "$work/venv"
pip=("$work/venv/bin/pip" --quiet --disable-pip-version-check)
from=(${WHEELS:+--no-index --find-links "$WHEELS"})
"${pip[@]}" install --require-hashes -r "$locks/build-tools.lock" "${from[@]}"
"${pip[@]}" wheel --no-deps --no-build-isolation --require-hashes -r "$locks/$version.lock" -w "$work/wheel" "${from[@]}"
"${pip[@]}" install --no-deps --target "$target.partial" "$work"/wheel/*.whl
rm -rf "$target"
mv "$target.partial" "$target"
echo "LoadGen $version built into $target"
