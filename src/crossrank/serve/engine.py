"""Inference off the event loop: bounded admission, worker threads, shortest job first.

A request becomes a job (one query, its uncached texts) and waits on a future. Workers score
jobs ``chunk_pairs`` pairs at a time, always taking the next chunk of the job with the fewest
pairs left (ties: the earliest), so a small request waits for at most the chunk in flight,
never for the whole of a large one, and equal large jobs finish one after another (a
slot frees every few seconds, not all at the end as with round-robin). Small jobs (one
chunk at most) and large ones each have ``max_queue`` places beyond one per worker; one
more is refused at once (the caller answers 429 with ``Retry-After``), so load beyond
capacity costs the excess requests, not everyone's latency. With micro-batching on, one
call takes a chunk of several jobs (up to ``max_batch_pairs`` pairs). A job is always cut
into the same chunks (by position in its own list) and calls never mix chunks, so a
request's scores are the same whatever traffic it met.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from crossrank.serve.cache import ScoreCache, pair_key


class QueueFull(Exception):
    """``max_queue`` jobs are admitted already: the server is saturated."""


@dataclass
class _Job:
    query: str
    texts: list[str]
    values: np.ndarray
    future: Future = field(default_factory=Future)
    seq: int = 0  # arrival order
    next: int = 0  # first text not yet handed to a worker
    left: int = 0  # texts not yet scored

    def __post_init__(self) -> None:
        self.left = len(self.texts)

    @property
    def unserved(self) -> int:
        return len(self.texts) - self.next


class Engine:
    """Scores (query, texts) with a shared reranker from ``workers`` threads.

    Args:
        score_pairs: ``(queries, texts, groups) -> raw scores``, e.g.
            ``OnnxReranker.score_pairs``; ``groups`` labels each pair with its chunk, and
            the reranker never puts two groups in one inference call. With ``outputs > 1``
            it returns ``[outputs, pairs]`` (``OnnxReranker.outputs_of_pairs``: scores and
            answer logits), and so do the engine's futures.
        model_key: identifies the model in cache keys (graph sha256, precision, window).
        max_queue: small jobs, and large ones, that may wait beyond one per worker.
        max_batch_pairs: pairs one worker call takes from the jobs (1: no micro-batching).
        chunk_pairs: pairs of one job scored before the scheduler picks again.
    """

    def __init__(
        self,
        score_pairs: Callable[[Sequence[str], Sequence[str], Sequence[int] | None], np.ndarray],
        model_key: str,
        workers: int = 1,
        max_queue: int = 32,
        max_batch_pairs: int = 8,
        cache_bytes: int = 64 << 20,
        on_batch: Callable[[int, float], None] | None = None,
        outputs: int = 1,
        chunk_pairs: int = 8,
    ) -> None:
        if min(workers, max_queue, max_batch_pairs, chunk_pairs) < 1:
            raise ValueError(
                f"expected workers, max_queue, max_batch_pairs and chunk_pairs >= 1, got "
                f"{workers}, {max_queue}, {max_batch_pairs} and {chunk_pairs}"
            )
        self.score_pairs = score_pairs
        self.outputs = outputs
        self.model_key = model_key
        self.max_queue = max_queue
        self.max_batch_pairs = max_batch_pairs
        self.chunk_pairs = chunk_pairs
        self.cache = ScoreCache(cache_bytes)
        self.on_batch = on_batch
        self._jobs: list[_Job] = []  # jobs with texts not yet handed out
        self._admitted = {True: 0, False: 0}  # small?, jobs whose future is not set yet
        self._seq = 0
        self._closing = False
        self._cond = threading.Condition()
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
    def pending_pairs(self) -> int:
        """Pairs admitted and not yet handed to a worker."""
        with self._cond:
            return sum(j.unserved for j in self._jobs)

    def pairs_ahead(self, pairs: int) -> int:
        """Pairs admitted that a new job of ``pairs`` pairs would wait for (shortest first)."""
        with self._cond:
            return sum(j.unserved for j in self._jobs if j.unserved <= pairs)

    @property
    def depth(self) -> int:
        """Jobs admitted: waiting or being scored."""
        return sum(self._admitted.values())

    def _small(self, job: _Job) -> bool:
        return len(job.texts) <= self.chunk_pairs

    def submit(self, query: str, texts: Sequence[str]) -> Future:
        """A future of the raw scores of ``texts`` for ``query`` (cached ones filled at once).

        Raises :class:`QueueFull` when ``max_queue`` jobs are admitted already.
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
        values = np.zeros((self.outputs, len(missing)), dtype=np.float32)
        job = _Job(query, [texts[i] for i in missing], values)
        small = self._small(job)
        with self._cond:
            if self._admitted[small] >= self.max_queue + len(self._threads) or self._closing:
                raise QueueFull
            self._admitted[small] += 1
            self._seq += 1
            job.seq = self._seq
            self._jobs.append(job)
            self._cond.notify()

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

    def _take(self) -> list[tuple[_Job, int, int]] | None:
        """Chunks ``(job, start, end)`` for one call, fewest pairs left first; None: stop."""
        with self._cond:
            while not self._jobs and not self._closing:
                self._cond.wait()
            if not self._jobs:
                return None
            chunks, pairs = [], 0
            for job in sorted(self._jobs, key=lambda j: (j.unserved, j.seq)):
                if chunks and pairs + min(self.chunk_pairs, job.unserved) > self.max_batch_pairs:
                    break
                end = min(job.next + self.chunk_pairs, len(job.texts))
                chunks.append((job, job.next, end))
                pairs += end - job.next
                job.next = end
                if end == len(job.texts):
                    self._jobs.remove(job)
            return chunks

    def _work(self) -> None:
        while (chunks := self._take()) is not None:
            queries = [job.query for job, a, b in chunks for _ in range(a, b)]
            texts = [t for job, a, b in chunks for t in job.texts[a:b]]
            groups = [k for k, (_, a, b) in enumerate(chunks) for _ in range(a, b)]
            try:
                t0 = time.perf_counter()
                out = self.score_pairs(queries, texts, groups)
                values = np.asarray(out, dtype=np.float32).reshape(self.outputs, len(texts))
                if self.on_batch is not None:
                    self.on_batch(len(texts), time.perf_counter() - t0)
            except Exception as exc:  # a backend failure: every job in the call learns of it
                self._fail({id(job): job for job, _, _ in chunks}.values(), exc)
                continue
            start = 0
            for job, a, b in chunks:
                part = values[:, start : start + b - a]
                start += b - a
                for i, t in enumerate(job.texts[a:b]):
                    self.cache.put(pair_key(self.model_key, job.query, t), tuple(part[:, i]))
                self._finish(job, a, b, part)

    def _finish(self, job: _Job, a: int, b: int, part: np.ndarray) -> None:
        with self._cond:
            if job.future.done():  # failed in another chunk
                return
            job.values[:, a:b] = part
            job.left -= b - a
            complete = job.left == 0
            if complete:
                self._admitted[self._small(job)] -= 1
        if complete:
            job.future.set_result(job.values)

    def _fail(self, jobs, exc: Exception) -> None:
        with self._cond:
            failed = [j for j in jobs if not j.future.done()]
            for j in failed:
                self._admitted[self._small(j)] -= 1
                if j in self._jobs:
                    self._jobs.remove(j)
        for j in failed:
            j.future.set_exception(exc)

    def close(self) -> None:
        """Stop the workers after the jobs already admitted."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
