"""Prometheus text exposition (format 0.0.4) of the server's counters, without a client library."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = [
            f'{name}_bucket{{{labels}{sep}le="{edge}"}} {count}'
            for edge, count in zip(self.buckets, self.counts, strict=True)
        ]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        out.append(f"{name}_sum{{{labels}}} {self.sum}" if labels else f"{name}_sum {self.sum}")
        out.append(
            f"{name}_count{{{labels}}} {self.total}" if labels else f"{name}_count {self.total}"
        )
        return out


class Metrics:
    """Requests by endpoint and status, latency and batch-size histograms, pairs scored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batch = _Histogram(BATCH_BUCKETS)
        self.pairs_scored = 0
        self.inference_seconds = 0.0

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, pairs: int, seconds: float) -> None:
        with self._lock:
            self.batch.observe(pairs)
            self.pairs_scored += pairs
            self.inference_seconds += seconds

    def render(self, queue_depth: int, cache) -> str:
        """The exposition text; ``cache`` is the engine's :class:`ScoreCache`."""
        lookups = cache.hits + cache.misses
        with self._lock:
            lines = [
                "# HELP crossrank_requests_total HTTP requests by endpoint and status code.",
                "# TYPE crossrank_requests_total counter",
                *(
                    f'crossrank_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                    for (e, s), n in sorted(self.requests.items())
                ),
                "# HELP crossrank_request_duration_seconds Request latency.",
                "# TYPE crossrank_request_duration_seconds histogram",
            ]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("crossrank_request_duration_seconds", f'endpoint="{endpoint}"')
            lines += [
                "# HELP crossrank_batch_pairs Pairs per inference call (micro-batches).",
                "# TYPE crossrank_batch_pairs histogram",
                *self.batch.lines("crossrank_batch_pairs", ""),
                "# HELP crossrank_pairs_scored_total Query-document pairs run through the model.",
                "# TYPE crossrank_pairs_scored_total counter",
                f"crossrank_pairs_scored_total {self.pairs_scored}",
                "# HELP crossrank_inference_seconds_total Time spent in the model.",
                "# TYPE crossrank_inference_seconds_total counter",
                f"crossrank_inference_seconds_total {self.inference_seconds}",
            ]
        lines += [
            "# HELP crossrank_queue_depth Inference jobs waiting or running.",
            "# TYPE crossrank_queue_depth gauge",
            f"crossrank_queue_depth {queue_depth}",
            "# HELP crossrank_cache_hits_total Score cache hits.",
            "# TYPE crossrank_cache_hits_total counter",
            f"crossrank_cache_hits_total {cache.hits}",
            "# HELP crossrank_cache_misses_total Score cache misses.",
            "# TYPE crossrank_cache_misses_total counter",
            f"crossrank_cache_misses_total {cache.misses}",
            "# HELP crossrank_cache_hit_ratio Hits over lookups since start.",
            "# TYPE crossrank_cache_hit_ratio gauge",
            f"crossrank_cache_hit_ratio {cache.hits / lookups if lookups else 0.0}",
            "# HELP crossrank_cache_bytes Estimated memory held by the score cache.",
            "# TYPE crossrank_cache_bytes gauge",
            f"crossrank_cache_bytes {cache.bytes}",
        ]
        return "\n".join(lines) + "\n"
