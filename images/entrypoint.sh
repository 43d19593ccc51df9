#!/bin/sh
# Run the image's benchmark with the knobs of the evaluation notes as environment variables:
# SCENARIO, MODE (accuracy|performance|submission; default: both accuracy and performance),
# N_COUNT, DATA_TYPE, DEVICE, N_DEVICES, N_PARTITIONS, PARTITION_OFFSET, BATCH_SIZE; any other
# `harness run` flag goes in HARNESS_ARGS or after the image name. `entrypoint harness ...` runs
# another harness command.
set -eu
if [ "${1:-}" = "harness" ]; then shift; exec python -m harness "$@"; fi
if [ ! -w /results ]; then
  echo "error: /results is not writable by uid $(id -u); mount a folder this user can write (e.g. ./results)" >&2
  exit 2
fi
set -- --scenario "${SCENARIO:-Offline}" ${N_COUNT:+--n-count "$N_COUNT"} ${DATA_TYPE:+--dtype "$DATA_TYPE"} \
  ${DEVICE:+--device "$DEVICE"} ${N_DEVICES:+--n-devices "$N_DEVICES"} ${N_PARTITIONS:+--n-partitions "$N_PARTITIONS"} \
  ${PARTITION_OFFSET:+--partition-offset "$PARTITION_OFFSET"} ${BATCH_SIZE:+--batch-size "$BATCH_SIZE"} \
  ${HARNESS_ARGS:-} "$@"
if [ -z "${MODE:-}" ]; then  # the default job: accuracy, then performance
  python -m harness run "$BENCHMARK" --mode accuracy "$@"
  exec python -m harness run "$BENCHMARK" --mode performance "$@"
fi
exec python -m harness run "$BENCHMARK" --mode "$MODE" "$@"
