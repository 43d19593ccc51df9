"""SUT machinery between LoadGen and a model backend.

Contract with LoadGen (see DESIGN.md, "Core contracts"):

* ``IssueQuery`` only enqueues and returns. Worker threads, one per replica (device), build
  their replica (load and warm up the model) and then take
  batches from ONE shared queue: Offline takes what is there up to ``max_batch`` (the single
  Offline query is sorted by sample length first, so batches pad little); Server waits at most
  ``max_wait_s`` for a batch to fill (dynamic batching under a latency budget).
* A ``Generator`` backend (LLMs) is batched continuously instead: between two of its decoding
  steps the worker adds queued samples while the running set stays within ``max_batch`` and the
  token budget ``max_tokens`` (rows x longest possible sequence), and each sequence is completed
  as soon as it ends. A busy replica leaves queued samples to an idle one (replicas share the
  work instead of the first one taking a whole query). In token mode outside Offline its first
  token goes to ``FirstTokenComplete`` the moment it exists; the final response holds every
  token, the first included, with ``n_tokens`` set.
* Every callback catches everything: an exception escaping into LoadGen kills the process.
* Every issued sample is completed exactly once. A sample whose batch failed is completed with
  an empty payload and counted; the run is then reported INVALID with the error.
* A watchdog ends a stalled run: when samples are outstanding and none completed for
  ``stall_timeout_s``, it completes them empty, records why, and fails every later query at once,
  so LoadGen finishes instead of hanging forever.
* Buffers handed to ``QuerySamplesComplete`` stay alive until it returns (LoadGen copies them then).

Why each worker builds its own replica: libgomp gives every thread that runs parallel work its own
OpenMP team. Had the main thread loaded the model, its idle team would oversubscribe the cores
once a worker starts a second one, and libgomp then throttles spin-waiting: every small op waits
for a futex wake (GPT-J demo generation ran 2.5x slower on 2 cores). Loading on the worker keeps
one team per replica, and loads the devices after the first in parallel.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harness.util import listing


class Backend(Protocol):
    def predict(self, samples: list[Any]) -> list[np.ndarray]:
        """Run one batch; return one payload array per sample, in order."""
        ...


@runtime_checkable
class Generator(Protocol):
    """A backend that generates tokens with continuous batching (``harness.backends.generation``):
    the SUT adds sequences between steps as the batch has room and streams their tokens."""

    def __len__(self) -> int: ...

    def footprint(self, prompt_length: int | None = None) -> int:
        """Tokens the running sequences can reach (rows x longest), with one more such prompt."""
        ...

    def add(self, key: Hashable, prompt: np.ndarray) -> None: ...

    def step(self, on_first: Callable[[Hashable, int], None], on_done: Callable[[Hashable, list[int]], None]) -> None:
        ...

    def clear(self) -> list[Hashable]: ...


class NullBackend:
    """Answers every sample at once with an empty payload: measures the harness, not a model."""

    def predict(self, samples: list[Any]) -> list[np.ndarray]:
        return [_EMPTY] * len(samples)


_EMPTY = np.zeros(0, dtype=np.uint8)


class NullGenerator:
    """The null backend for token-mode runs, where LoadGen needs a first token and n_tokens >= 2:
    every sequence gets the two tokens [0, 0] in one step."""

    def __init__(self) -> None:
        self._keys: list[Hashable] = []

    def __len__(self) -> int:
        return len(self._keys)

    def footprint(self, prompt_length: int | None = None) -> int:
        return 0

    def add(self, key: Hashable, prompt: np.ndarray) -> None:
        self._keys.append(key)

    def step(self, on_first: Callable[[Hashable, int], None], on_done: Callable[[Hashable, list[int]], None]) -> None:
        keys, self._keys = self._keys, []
        for key in keys:
            on_first(key, 0)
            on_done(key, [0, 0])

    def clear(self) -> list[Hashable]:
        keys, self._keys = self._keys, []
        return keys


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int
    max_wait_s: float = 0.0
    """How long a worker holding a partial batch waits for more samples (Server)."""
    sort_by_length: bool = False
    """Sort each issued query by descending sample length (Offline: one query holds everything)."""
    max_tokens: int | None = None
    """Cap on a batch's length (needs ``sample_length``): samples x longest sample length when
    ``padded``, else the total of the lengths. Memory traffic grows with it; a batch always takes
    at least one sample."""
    padded: bool = True


@dataclass
class SutStats:
    issued: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    """The first distinct error messages (at most ``MAX_ERRORS``)."""
    failed_indices: list[int] = field(default_factory=list)
    """LoadGen sample indices of failed samples (the first 100)."""
    by_replica: list[int] = field(default_factory=list)
    """Samples each replica completed, in device order (how the work spread over ``--n-devices``)."""
    stalled: str | None = None

    MAX_ERRORS = 10

    def add_error(self, message: str) -> None:
        if message not in self.errors and len(self.errors) < self.MAX_ERRORS:
            self.errors.append(message)


class SUT:
    """A LoadGen SUT over one or more backend replicas sharing one queue."""

    def __init__(self, get_sample: Callable[[int], Any], replicas: Sequence[Callable[[], Backend]],
                 policy: BatchPolicy, payload_dtype: str, stall_timeout_s: float,
                 sample_length: Callable[[int], int] | None = None, stream_first: bool = False) -> None:
        if not replicas:
            raise ValueError("at least one backend replica is needed")
        self._get_sample = get_sample
        self._replicas = list(replicas)
        self._policy = policy
        self._dtype = np.dtype(payload_dtype)
        self._stall_timeout_s = stall_timeout_s
        self._sample_length = sample_length
        self._stream_first = stream_first
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, int]] = deque()
        self._pending: dict[int, int] = {}  # response id -> sample index, for samples not yet completed
        self._flushed = False
        self._stopping = False
        self._aborted: str | None = None
        self._last_progress = time.monotonic()
        self._idle: set[int] = set()  # generator replicas with nothing running
        self._threads: list[threading.Thread] = []
        self._ready = threading.Semaphore(0)
        self._load_errors: list[BaseException] = []
        self.stats = SutStats(by_replica=[0] * len(self._replicas))
        self.handle: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> int:
        """Build every replica on its worker thread, then construct the LoadGen SUT.

        Raises the first error a replica factory raised (after stopping the others).
        """
        import mlperf_loadgen as lg

        self._threads = [threading.Thread(target=self._work, args=(i, r), name=f"sut-worker-{i}", daemon=True)
                         for i, r in enumerate(self._replicas)]
        # The first replica is built alone: its imports finish before any other replica starts.
        # Concurrent first imports of one package are not safe (two threads importing
        # transformers' lazy modules at once fail with "cannot import name").
        self._threads[0].start()
        self._ready.acquire()
        if not self._load_errors:
            for t in self._threads[1:]:
                t.start()
            for _ in self._threads[1:]:
                self._ready.acquire()
        if self._load_errors:
            self.stop()
            raise self._load_errors[0]
        watchdog = threading.Thread(target=self._watch, name="sut-watchdog", daemon=True)
        self._threads.append(watchdog)
        watchdog.start()
        # the "fast" SUT hands us plain id and index lists instead of QuerySample objects
        self.handle = lg.ConstructFastSUT(self._issue, self._flush)
        return self.handle

    def stop(self, join_timeout_s: float = 5.0) -> None:
        import mlperf_loadgen as lg

        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            if t.ident is not None:  # a failed first replica leaves the others unstarted
                t.join(timeout=join_timeout_s)  # a replica stuck in a model call is abandoned (daemon)
        if self.handle is not None:
            lg.DestroyFastSUT(self.handle)
            self.handle = None

    # -- LoadGen callbacks (must never raise) ----------------------------------------------
    def _issue(self, ids: list[int], indices: list[int]) -> None:
        items: list[tuple[int, int]] = []
        try:
            if self._policy.sort_by_length and self._sample_length is not None and len(ids) > 1:
                ids, indices = self._longest_first(ids, indices)
            items = list(zip(ids, indices))
            with self._cond:
                self.stats.issued += len(items)
                if not self._pending:
                    self._last_progress = time.monotonic()
                self._pending.update(items)
                if self._aborted is None:
                    self._queue.extend(items)
                    self._flushed = False
                    self._cond.notify_all()
                    return
            self._fail(items, self._aborted)
        except BaseException as exc:  # noqa: BLE001 - LoadGen must never see an exception
            self._fail(items or list(zip(ids, indices)), f"IssueQuery failed: {exc!r}")

    def _longest_first(self, ids: list[int], indices: list[int]) -> tuple[list[int], list[int]]:
        """Reorder a query by descending sample length (stable), asking each distinct sample once."""
        index_array = np.asarray(indices)
        unique, inverse = np.unique(index_array, return_inverse=True)
        lengths = np.fromiter((self._sample_length(int(i)) for i in unique), dtype=np.int64, count=len(unique))
        order = np.argsort(-lengths[inverse], kind="stable")
        return np.asarray(ids)[order].tolist(), index_array[order].tolist()

    def _flush(self) -> None:
        try:
            with self._cond:
                self._flushed = True
                self._cond.notify_all()
        except BaseException:  # noqa: BLE001
            pass

    # -- workers ---------------------------------------------------------------------------
    def _next_batch(self) -> list[tuple[int, int]] | None:
        policy = self._policy
        measure = self._sample_length if policy.max_tokens else None
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            batch: list[tuple[int, int]] = []
            longest = total = 0
            deadline = time.monotonic() + policy.max_wait_s
            while True:
                while self._queue and len(batch) < policy.max_batch:
                    if measure is not None:
                        length = measure(self._queue[0][1])
                        cost = (len(batch) + 1) * max(longest, length) if policy.padded else total + length
                        if batch and cost > policy.max_tokens:
                            return batch
                        longest, total = max(longest, length), total + length
                    batch.append(self._queue.popleft())
                if len(batch) >= policy.max_batch or self._flushed or self._stopping:
                    return batch
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return batch
                self._cond.wait(remaining)

    def _work(self, replica: int, build: Callable[[], Backend]) -> None:
        try:
            backend = build()
            if isinstance(backend, Generator):
                with self._cond:
                    self._idle.add(replica)  # before start() returns: the first query finds it idle
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._load_errors.append(exc)
            return
        finally:
            self._ready.release()
        if isinstance(backend, Generator):
            self._generate(replica, backend)
            return
        while (batch := self._next_batch()) is not None:
            batch, samples = self._fetch(batch)
            if not batch:
                continue
            try:
                outputs = backend.predict(samples)
                if len(outputs) != len(batch):
                    raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(batch)} samples")
            except Exception as exc:  # noqa: BLE001 - a failed batch must still be completed
                message = f"{type(exc).__name__}: {exc}"
                with self._cond:
                    self.stats.add_error(message + "\n" + traceback.format_exc(limit=3))
                self._fail(batch, None)
                continue
            self._complete(replica, batch, outputs)

    def _wait_for_work(self, replica: int, engine: Generator) -> bool:
        """Block while there is nothing to generate; False when stopping."""
        with self._cond:
            if not len(engine):
                self._idle.add(replica)
            while not self._queue and not len(engine) and not self._stopping:
                self._cond.wait()
            return not self._stopping

    def _admit(self, replica: int, engine: Generator) -> tuple[int, int] | None:
        """The next queued sample if the engine has room for it: always when it is idle, never while
        another replica is idle (that one takes it)."""
        policy = self._policy
        with self._cond:
            if not self._queue:
                return None
            if len(engine):
                if len(engine) >= policy.max_batch or self._idle - {replica}:
                    return None
                index = self._queue[0][1]
                if policy.max_tokens:
                    length = self._sample_length(index) if self._sample_length else len(self._get_sample(index))
                    if engine.footprint(length) > policy.max_tokens:
                        return None
            self._idle.discard(replica)
            return self._queue.popleft()

    def _generate(self, replica: int, engine: Generator) -> None:
        """Continuous batching: between two engine steps, join what fits; stream first tokens outside
        Offline; complete each sequence as it ends. A failed step fails the sequences it held."""
        running: dict[int, tuple[int, int]] = {}  # response id -> (response id, sample index)

        def first(rid: Hashable, token: int) -> None:
            with self._cond:
                self._last_progress = time.monotonic()
            if self._stream_first:
                self._first_token(int(rid), token)

        def done(rid: Hashable, tokens: list[int]) -> None:
            self._complete(replica, [running.pop(int(rid))], [np.asarray(tokens)])

        while self._wait_for_work(replica, engine):
            while (item := self._admit(replica, engine)) is not None:
                for item, sample in zip(*self._fetch([item])):
                    try:
                        engine.add(item[0], sample)
                        running[item[0]] = item
                    except Exception as exc:  # noqa: BLE001 - e.g. a prompt longer than the model's context
                        with self._cond:
                            self.stats.add_error(f"sample {item[1]}: {type(exc).__name__}: {exc}")
                        self._fail([item], None)
            if not len(engine):
                continue
            try:
                engine.step(first, done)
            except Exception as exc:  # noqa: BLE001 - the sequences of a failed step are failed, the engine goes on
                with self._cond:
                    self.stats.add_error(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
                self._fail([running.pop(int(rid)) for rid in engine.clear() if int(rid) in running], None)

    def _first_token(self, rid: int, token: int) -> None:
        import mlperf_loadgen as lg

        try:
            with self._cond:
                if rid not in self._pending:  # ended by the watchdog meanwhile
                    return
            array = np.asarray([token], dtype=self._dtype)
            lg.FirstTokenComplete([lg.QuerySampleResponse(rid, array.__array_interface__["data"][0], array.nbytes, 1)])
        except BaseException as exc:  # noqa: BLE001
            with self._cond:
                self.stats.add_error(f"streaming a first token failed: {exc!r}")

    def _fetch(self, batch: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[Any]]:
        """The batch's samples; one that cannot be read fails alone, the rest still run."""
        kept, samples = [], []
        for item in batch:
            try:
                samples.append(self._get_sample(item[1]))
                kept.append(item)
            except Exception as exc:  # noqa: BLE001 - e.g. a corrupt image: fail this sample only
                with self._cond:
                    self.stats.add_error(f"sample {item[1]}: {type(exc).__name__}: {exc}")
                self._fail([item], None)
        return kept, samples

    # -- completion ------------------------------------------------------------------------
    def _claim(self, batch: Sequence[tuple[int, int]]) -> list[int]:
        """Positions in ``batch`` still pending; claims them so nobody completes them twice."""
        with self._cond:
            self._last_progress = time.monotonic()
            return [i for i, (rid, _) in enumerate(batch) if self._pending.pop(rid, None) is not None]

    def _complete(self, replica: int, batch: Sequence[tuple[int, int]], outputs: Sequence[np.ndarray]) -> None:
        import mlperf_loadgen as lg

        try:
            keep = self._claim(batch)
            arrays, responses, response, dtype = [], [], lg.QuerySampleResponse, self._dtype
            for i in keep:
                array = outputs[i]
                if not array.size:  # nothing to copy: the common case of performance-only SUTs
                    responses.append(response(batch[i][0], 0, 0, 0))
                    continue
                if array.dtype != dtype or not array.flags.c_contiguous:
                    array = np.ascontiguousarray(array, dtype=dtype)
                arrays.append(array)
                address = array.__array_interface__["data"][0]
                responses.append(response(batch[i][0], address, array.nbytes, array.size))
            lg.QuerySamplesComplete(responses)  # copies the bytes before returning; `arrays` is alive
            with self._cond:
                self.stats.completed += len(responses)
                self.stats.by_replica[replica] += len(responses)
        except BaseException as exc:  # noqa: BLE001
            with self._cond:
                self.stats.add_error(f"completing a batch failed: {exc!r}")

    def _fail(self, batch: Sequence[tuple[int, int]], reason: str | None) -> None:
        """Complete the still-pending samples of ``batch`` with empty payloads and count them."""
        import mlperf_loadgen as lg

        try:
            keep = self._claim(batch)
            with self._cond:
                if reason:
                    self.stats.add_error(reason)
                self.stats.failed += len(keep)
                room = 100 - len(self.stats.failed_indices)
                self.stats.failed_indices.extend(batch[i][1] for i in keep[:max(room, 0)])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(batch[i][0], 0, 0, 0) for i in keep])
        except BaseException:  # noqa: BLE001
            pass

    # -- watchdog --------------------------------------------------------------------------
    def _watch(self) -> None:
        tick = min(1.0, self._stall_timeout_s / 10)
        while True:
            time.sleep(tick)
            with self._cond:
                if self._stopping:
                    return
                idle = time.monotonic() - self._last_progress
                if not self._pending or idle < self._stall_timeout_s or self._aborted:
                    continue
                outstanding = list(self._pending.items())
                self._aborted = (f"watchdog: no sample completed for {idle:.0f} s (limit {self._stall_timeout_s:g} s); "
                                 f"ended the run with {len(outstanding)} samples outstanding (sample indices "
                                 f"{listing([index for _, index in outstanding], 10)}). Raise --stall-timeout if the "
                                 f"model is just slow")
                self.stats.stalled = self._aborted
                self._queue.clear()
            self._fail(outstanding, self._aborted)


class QSL:
    """LoadGen QSL over a sample set; load/unload are forwarded and never raise into LoadGen."""

    def __init__(self, total: int, performance_count: int, load: Callable[[list[int]], None],
                 unload: Callable[[list[int]], None], errors: SutStats) -> None:
        self._load, self._unload, self._errors = load, unload, errors
        self.total, self.performance_count = total, performance_count
        self.handle: int | None = None

    def start(self) -> int:
        import mlperf_loadgen as lg

        self.handle = lg.ConstructQSL(self.total, self.performance_count, self._on_load, self._on_unload)
        return self.handle

    def stop(self) -> None:
        import mlperf_loadgen as lg

        if self.handle is not None:
            lg.DestroyQSL(self.handle)
            self.handle = None

    def _on_load(self, indices: list[int]) -> None:
        try:
            self._load(list(indices))
        except BaseException as exc:  # noqa: BLE001 - its samples will fail in the SUT and be counted
            self._errors.add_error(f"loading samples failed: {exc!r}")

    def _on_unload(self, indices: list[int]) -> None:
        try:
            self._unload(list(indices))
        except BaseException as exc:  # noqa: BLE001
            self._errors.add_error(f"unloading samples failed: {exc!r}")
