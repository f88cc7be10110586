"""A persistent store of (query, document) scores, so that commands reading the same pairs with
the same model (``fuse``, ``sweep``, ``eval``, ``scripts/reproduce_nfcorpus.py``) score each
pair once.

A store is one folder per scoring configuration: the artifact's sha256, the precision, the
window, the CPU's kernel class and the backend's version (int8 kernels differ between CPUs, and
a backend upgrade may move scores by rounding). Inside, shards of ``(digest, outputs)`` rows; a
process writes only new shards, atomically, so concurrent readers and writers never see half a
file and a crash loses at most the scores since the last flush. A stored score is only exact
when a pair's score does not depend on its batch-mates, which is why
:class:`~crossrank.runtime.reranker.OnnxReranker` refuses a store with an explicit batch size.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import platform
import uuid
import weakref
import zipfile
from collections.abc import Callable, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from crossrank.io import atomic_file
from crossrank.runtime.hardware import cpu_info

log = logging.getLogger(__name__)
DIGEST_BYTES = 32
FLUSH_EVERY = 4096  # new rows held in memory before a shard is written
MAX_SHARDS = 16  # more shards than this are merged into one when a store is opened


def pair_digest(query: str, text: str) -> bytes:
    """sha256 of the length-prefixed query and text (the texts are not kept).

    Each part is prefixed by its byte length, so no split of the same bytes into another
    (query, text) gives the same digest (a separator such as NUL can occur in the texts).
    """
    h = hashlib.sha256()
    for part in (query, text):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


def package_version(module: str) -> str:
    """The imported module's own version (a renamed distribution such as onnxruntime-gpu has
    no ``onnxruntime`` metadata), else its distribution's, else "unknown"."""
    try:
        found = importlib.import_module(module)
        version = getattr(found, "__version__", None) or getattr(found, "get_version", str)()
    except ImportError:
        version = ""
    if not version:
        try:
            version = metadata.version(module)
        except metadata.PackageNotFoundError:
            version = "unknown"
    return f"{module}-{version}"


@cache
def runtime_source_sha256() -> str:
    """One hash of this package's source: tokenization, packing, batching and session set-up
    all live here, and a change to any of them may change a score."""
    h = hashlib.sha256()
    for file in sorted(Path(__file__).parent.glob("*.py")):
        h.update(file.name.encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def scoring_environment(precision: str) -> dict[str, str]:
    """What besides the model decides a score: the architecture and every CPU flag (int8 kernels
    differ between CPUs of one kernel class), the backend's, ``tokenizers``' and our code's
    versions."""
    cpu = cpu_info()
    backend = "openvino" if precision in ("bf16", "int8-ov") else "onnxruntime"
    return {
        "machine": platform.machine(),
        "cpu_flags": hashlib.sha256(" ".join(sorted(cpu.flags)).encode()).hexdigest(),
        "backend": package_version(backend),
        "tokenizers": package_version("tokenizers"),
        "runtime_source": runtime_source_sha256(),
    }


def _sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class ScoreStore:
    """Maps pair digests to a pair's outputs (``width`` floats: the score, then any other
    graph output), persisted under ``folder``."""

    def __init__(self, folder: str | Path, width: int) -> None:
        if width < 1:
            raise ValueError(f"expected width >= 1 (outputs per pair), got {width}")
        self.folder = Path(folder)
        self.width = width
        self._rows: dict[bytes, np.ndarray] = {}
        self._pending: dict[bytes, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        loaded = [shard for shard in sorted(self.folder.glob("*.npz")) if self._load(shard)]
        if len(loaded) > MAX_SHARDS and self._rows:
            self._compact(loaded)
        # Scores added since the last shard are written when the store is collected or the
        # interpreter exits normally; the finalizer holds the pending rows, not the store.
        self._finalizer = weakref.finalize(self, _flush_rows, self.folder, self._pending)

    @classmethod
    def for_model(
        cls, root: str | Path, identity: dict, precision: str, window: int, width: int
    ) -> ScoreStore:
        """The store in ``root`` of a model (``identity``: JSON-able, whatever decides its
        outputs, e.g. its graph's and tokenizer's hashes) run at ``precision`` and ``window``
        in this :func:`scoring_environment`."""
        environment = _sha(scoring_environment(precision))
        kernels = cpu_info().kernel_class
        name = f"{_sha(identity)[:16]}-{precision}-w{window}-{kernels}-{environment[:12]}"
        return cls(Path(root) / name, width)

    def __len__(self) -> int:
        return len(self._rows)

    def _load(self, shard: Path) -> bool:
        """Read one shard's rows; False (and a warning) for one that cannot be read."""
        try:
            with np.load(shard, allow_pickle=False) as npz:
                digests, values = npz["digests"], npz["values"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable score shard skipped (%s)", shard, exc)  # a cache: skip
            return False
        if digests.shape[1:] != (DIGEST_BYTES,) or values.shape != (len(digests), self.width):
            log.warning(
                "%s: expected digests [n, %d] and values [n, %d], got %s and %s; skipped",
                shard, DIGEST_BYTES, self.width, digests.shape, values.shape,
            )  # fmt: skip
            return False
        for d, v in zip(digests, values, strict=True):
            self._rows[d.tobytes()] = v
        return True

    def _compact(self, shards: Sequence[Path]) -> None:
        """One shard with every row instead of the ``shards`` read (others may still be reading
        them: a reader that misses one recomputes those scores)."""
        _write_shard(self.folder, self._rows)
        for shard in shards:
            shard.unlink(missing_ok=True)

    def lookup(self, digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(outputs ``[width, n]``, found ``[n]`` bool); rows not found are zero."""
        out = np.zeros((self.width, len(digests)), dtype=np.float32)
        found = np.zeros(len(digests), dtype=bool)
        for i, d in enumerate(digests):
            row = self._rows.get(d)
            if row is not None:
                out[:, i] = row
                found[i] = True
        hits = int(found.sum())
        self.hits += hits
        self.misses += len(digests) - hits
        return out, found

    def add(self, digests: Sequence[bytes], outputs: np.ndarray) -> None:
        """Store each pair's outputs (``[width, n]``); writes a shard every ``FLUSH_EVERY`` rows."""
        outputs = np.asarray(outputs, dtype=np.float32)
        if outputs.shape != (self.width, len(digests)):
            raise ValueError(
                f"expected outputs of shape ({self.width}, {len(digests)}), got {outputs.shape}"
            )
        for i, d in enumerate(digests):
            self._rows[d] = self._pending[d] = outputs[:, i].copy()
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def outputs(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        groups: Sequence[int] | None,
        run: Callable[..., np.ndarray],
    ) -> np.ndarray:
        """The pairs' outputs ``[width, n]``: stored ones read, the rest computed by
        ``run(queries, documents, groups)`` on those pairs only, then stored."""
        digests = [pair_digest(q, d) for q, d in zip(queries, documents, strict=True)]
        out, found = self.lookup(digests)
        missing = np.flatnonzero(~found)
        if len(missing):
            computed = run(
                [queries[i] for i in missing],
                [documents[i] for i in missing],
                None if groups is None else [groups[i] for i in missing],
            )
            out[:, missing] = computed
            self.add([digests[i] for i in missing], computed)
        return out

    def flush(self) -> None:
        """Write the rows added since the last flush as one new shard."""
        if self._pending:
            _write_shard(self.folder, self._pending)
            self._pending.clear()  # the same dict: the finalizer holds it

    def stats(self) -> dict[str, int | str]:
        return {"folder": str(self.folder), "hits": self.hits, "misses": self.misses}


def _write_shard(folder: Path, rows: dict[bytes, np.ndarray]) -> None:
    digests = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, DIGEST_BYTES)
    values = np.stack(list(rows.values())).astype(np.float32)
    with atomic_file(folder / f"{uuid.uuid4().hex}.npz") as f:
        np.savez(f, digests=digests, values=values)


def _flush_rows(folder: Path, pending: dict[bytes, np.ndarray]) -> None:
    """The last rows of a store that is gone (collected, or the interpreter exiting)."""
    try:
        if pending:
            _write_shard(folder, pending)
            pending.clear()
    except OSError as exc:
        log.warning("%s: could not write the last scores (%s)", folder, exc)
