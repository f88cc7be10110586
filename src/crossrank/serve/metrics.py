"""The server's Prometheus metrics, kept and exposed with ``prometheus_client``.

Each application has its own registry (tests and ``--workers`` processes start several), so
nothing leaks between them; the cache and the queue are read when scraped.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Live:
    """Values read at scrape time: the engine's queue and score cache."""

    def __init__(self) -> None:
        self.engine = None

    def collect(self):
        engine = self.engine
        if engine is None:
            return
        cache = engine.cache
        lookups = cache.hits + cache.misses
        yield GaugeMetricFamily(
            "crossrank_queue_depth", "Inference jobs waiting or running.", engine.depth
        )
        yield CounterMetricFamily("crossrank_cache_hits", "Score cache hits.", cache.hits)
        yield CounterMetricFamily("crossrank_cache_misses", "Score cache misses.", cache.misses)
        yield GaugeMetricFamily(
            "crossrank_cache_hit_ratio",
            "Hits over lookups since start.",
            cache.hits / lookups if lookups else 0.0,
        )
        yield GaugeMetricFamily(
            "crossrank_cache_bytes", "Estimated memory held by the score cache.", cache.bytes
        )


class Metrics:
    """Requests by endpoint and status, latency and batch-size histograms, pairs scored."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "crossrank_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "crossrank_request_duration_seconds",
            "Request latency.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "crossrank_batch_pairs",
            "Pairs per inference call.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._pairs = Counter(
            "crossrank_pairs_scored", "Query-document pairs run through the model.", registry=r
        )
        self._seconds = Counter(
            "crossrank_inference_seconds", "Time spent in the model.", registry=r
        )
        self._live = _Live()
        r.register(self._live)
        self._lock = threading.Lock()
        self.pairs_scored = 0  # also kept here: the service reads its pace from them
        self.inference_seconds = 0.0

    def watch(self, engine) -> None:
        """Expose ``engine``'s queue depth and cache counters at scrape time."""
        self._live.engine = engine

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, pairs: int, seconds: float) -> None:
        self.batch.observe(pairs)
        self._pairs.inc(pairs)
        self._seconds.inc(seconds)
        with self._lock:
            self.pairs_scored += pairs
            self.inference_seconds += seconds

    def render(self) -> bytes:
        return generate_latest(self.registry)
