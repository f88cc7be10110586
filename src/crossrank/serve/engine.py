"""Inference off the event loop: a bounded queue, worker threads and micro-batching.

Requests put a job (one query, its uncached texts) on a bounded queue and wait on a future;
a full queue is refused at once (the caller answers 429), so load beyond capacity costs
the excess requests, not everyone's latency. Each worker takes a job and, with
micro-batching on, every other job already waiting (up to ``max_batch_pairs`` pairs), and
scores them in one call with fewer hand-offs between threads. Inference batches never mix
requests, so a request's scores are the same whatever it was merged with.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from crossrank.serve.cache import ScoreCache, pair_key


class QueueFull(Exception):
    """The bounded inference queue has no room: the server is saturated."""


@dataclass
class _Job:
    query: str
    texts: list[str]
    future: Future = field(default_factory=Future)


class Engine:
    """Scores (query, texts) with a shared reranker from ``workers`` threads.

    Args:
        score_pairs: ``(queries, texts, groups) -> raw scores``, e.g.
            ``OnnxReranker.score_pairs``; ``groups`` labels each pair with its request, so
            that a request's scores do not depend on what it was merged with. With
            ``outputs > 1`` it returns ``[outputs, pairs]`` (``OnnxReranker.outputs_of_pairs``:
            scores and answer logits), and so do the engine's futures.
        model_key: identifies the model in cache keys (the graph's sha256 and precision).
        max_queue: jobs that may wait; one more is refused with :class:`QueueFull`.
        max_batch_pairs: pairs one worker merges from waiting jobs (1: no micro-batching).
    """

    def __init__(
        self,
        score_pairs: Callable[[Sequence[str], Sequence[str], Sequence[int] | None], np.ndarray],
        model_key: str,
        workers: int = 1,
        max_queue: int = 32,
        max_batch_pairs: int = 256,
        cache_bytes: int = 64 << 20,
        on_batch: Callable[[int, float], None] | None = None,
        outputs: int = 1,
    ) -> None:
        if workers < 1 or max_queue < 1 or max_batch_pairs < 1:
            raise ValueError(
                f"expected workers, max_queue and max_batch_pairs >= 1, got "
                f"{workers}, {max_queue} and {max_batch_pairs}"
            )
        self.score_pairs = score_pairs
        self.outputs = outputs
        self.model_key = model_key
        self.max_batch_pairs = max_batch_pairs
        self.cache = ScoreCache(cache_bytes)
        self.on_batch = on_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"crossrank-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    @property
    def alive(self) -> bool:
        """Whether every worker thread is running."""
        return all(t.is_alive() for t in self._threads)

    @property
    def depth(self) -> int:
        """Jobs waiting plus jobs being scored."""
        return self._queue.qsize() + self._in_flight

    def submit(self, query: str, texts: Sequence[str]) -> Future:
        """A future of the raw scores of ``texts`` for ``query`` (cached ones filled at once).

        Raises :class:`QueueFull` when the queue has no room.
        """
        keys = [pair_key(self.model_key, query, t) for t in texts]
        cached = [self.cache.get(k) for k in keys]
        missing = [i for i, s in enumerate(cached) if s is None]
        result: Future = Future()
        known = np.zeros((self.outputs, len(texts)), dtype=np.float32)
        for i, values in enumerate(cached):
            if values is not None:
                known[:, i] = values
        if not missing:
            result.set_result(self._shape(known))
            return result
        job = _Job(query, [texts[i] for i in missing])
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

        def done(f: Future) -> None:
            if f.exception() is not None:
                result.set_exception(f.exception())
                return
            known[:, missing] = f.result()
            result.set_result(self._shape(known))

        job.future.add_done_callback(done)
        return result

    def _shape(self, values: np.ndarray) -> np.ndarray:
        return values[0] if self.outputs == 1 else values

    def _take(self) -> list[_Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        jobs, pairs = [first], len(first.texts)
        while pairs < self.max_batch_pairs:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # shutdown: let this worker finish, another sees the next None
                self._queue.put_nowait(None)
                break
            jobs.append(job)
            pairs += len(job.texts)
        return jobs

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            with self._lock:
                self._in_flight += len(jobs)
            try:
                queries = [j.query for j in jobs for _ in j.texts]
                texts = [t for j in jobs for t in j.texts]
                groups = [k for k, j in enumerate(jobs) for _ in j.texts]
                t0 = time.perf_counter()
                out = self.score_pairs(queries, texts, groups)
                values = np.asarray(out, dtype=np.float32).reshape(self.outputs, len(texts))
                if self.on_batch is not None:
                    self.on_batch(len(texts), time.perf_counter() - t0)
                start = 0
                for j in jobs:
                    part = values[:, start : start + len(j.texts)]
                    start += len(j.texts)
                    for i, t in enumerate(j.texts):
                        self.cache.put(pair_key(self.model_key, j.query, t), tuple(part[:, i]))
                    j.future.set_result(part)
            except Exception as exc:  # a backend failure: every job of the batch learns of it
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
            finally:
                with self._lock:
                    self._in_flight -= len(jobs)

    def close(self) -> None:
        """Stop the workers after the jobs already queued."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=30)
