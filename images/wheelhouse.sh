#!/usr/bin/env bash
# Put every locked package of the images into images/wheels/, checked against the lock hashes, for
# machines whose `docker build` cannot reach PyPI: the builds then install from these files
# (images/build.sh with LOCAL_WHEELS=1). Files already there are checked offline first.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p images/wheels
for lock in images/base/requirements.lock images/pytorch/requirements.lock images/imaging/requirements.lock \
    images/speech/requirements.lock images/recommendation/requirements.lock tests/requirements.lock \
    images/loadgen/*.lock; do
  python3.11 -m pip download --quiet --disable-pip-version-check --require-hashes --no-deps \
      --no-index --find-links images/wheels -r "$lock" -d images/wheels 2>/dev/null ||
    python3.11 -m pip download --quiet --disable-pip-version-check --require-hashes --no-deps \
      -r "$lock" -d images/wheels
done
# build tools for the one sdist in the locks (rouge-score); pip's isolated build takes them from here
ls images/wheels/setuptools-84.2.1-*.whl images/wheels/wheel-0.45.1-*.whl >/dev/null 2>&1 ||
  python3.11 -m pip download --quiet --disable-pip-version-check --no-deps -d images/wheels \
    setuptools==84.2.1 wheel==0.45.1
du -sh images/wheels
