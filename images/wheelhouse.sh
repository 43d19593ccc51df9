#!/usr/bin/env bash
# Download every locked package of the image families into images/<family>/wheels/, checked
# against the lock hashes, for machines whose `docker build` cannot reach PyPI itself: the build
# then installs from these files (see images/README.md). Harmless elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
for family in base pytorch; do
  mkdir -p "$family/wheels"
  python3.11 -m pip download --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$family/requirements.lock" -d "$family/wheels"
done
# build tools for the one sdist in the locks (rouge-score); pip's isolated build takes them from here
python3.11 -m pip download --quiet --disable-pip-version-check --no-deps -d base/wheels \
  setuptools==84.2.1 wheel==0.45.1
du -sh base/wheels pytorch/wheels
