# One benchmark's image: its family image plus the harness and the benchmark folder.
# Context: the repository root. Runs as the non-root user; results go to /results.
ARG FAMILY=mlperf-harness/pytorch:latest
FROM ${FAMILY}
ARG BENCHMARK
ARG ROUND=v4.1
ARG GIT_COMMIT=unknown
ARG LOCK_SHA256=unknown
LABEL org.opencontainers.image.title="mlperf-harness ${BENCHMARK}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      mlperf-harness.benchmark="${BENCHMARK}" \
      mlperf-harness.round="${ROUND}" \
      mlperf-harness.lock-sha256="${LOCK_SHA256}"
ENV PYTHONPATH=/opt/mlperf-harness HARNESS_RESULTS=/results HARNESS_DATA=/data HARNESS_CACHE=/opt/mlperf-harness/cache \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 BENCHMARK=${BENCHMARK} \
    HARNESS_IMAGE_COMMIT=${GIT_COMMIT} HARNESS_IMAGE_LOCK_SHA256=${LOCK_SHA256} \
    HARNESS_IMAGE_LOCKS=/opt/mlperf-harness/locks.sha256
COPY harness/ /opt/mlperf-harness/harness/
COPY benchmarks/__init__.py /opt/mlperf-harness/benchmarks/__init__.py
COPY benchmarks/${BENCHMARK}/ /opt/mlperf-harness/benchmarks/${BENCHMARK}/
COPY images/entrypoint.sh /usr/local/bin/entrypoint
# the demo tier, built offline at image build time, so a run without data starts at once
RUN cd /opt/mlperf-harness && python -m harness demo-data "${BENCHMARK}" --out "cache/demo/${BENCHMARK}-seed0" \
    && sha256sum /opt/locks/*.lock > /opt/mlperf-harness/locks.sha256 \
    && chmod -R a+rX /opt/mlperf-harness \
    && mkdir -p /results "/data/${BENCHMARK}" && chown mlperf:mlperf /results "/data/${BENCHMARK}"
USER mlperf
WORKDIR /home/mlperf
ENTRYPOINT ["entrypoint"]
