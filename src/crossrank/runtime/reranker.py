"""``OnnxReranker``: batched cross-encoder inference with onnxruntime and numpy (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossrank.runtime.artifact import ArtifactError, Manifest, artifact_sha256, verify_file
from crossrank.runtime.backends import Backend, OnnxRuntimeBackend, OpenVinoBackend
from crossrank.runtime.batching import plan_batches
from crossrank.runtime.candidates import Ranked, candidate
from crossrank.runtime.guards import warn_if_swapped
from crossrank.runtime.precision import MODEL_FILES, Precision, resolve_precision
from crossrank.runtime.score_store import ScoreStore
from crossrank.runtime.tokenization import check_texts, pack_pairs, query_cap
from crossrank.runtime.tokenizers import tokenizer_from_config


class OnnxReranker:
    """Loads a crossrank artifact directory and scores (query, document) pairs.

    Args:
        model_dir: an artifact written by ``scripts/export.py``.
        precision: ``"fp32"``; ``"int8"`` (needs ``model.int8.onnx``); ``"bf16"`` and
            ``"int8-ov"`` (OpenVINO); ``"auto"``: the path measured fastest on this CPU (:mod:`crossrank.runtime.hardware`).
        threads: intra-op threads (default: the cores this process may use).
        batch_size: pairs per inference call. Default: onnxruntime one pair per call, OpenVINO
            up to 8 pairs of one token length; either way a pair's score is bitwise the same
            whatever shares its call. int8 refuses any other value (dynamic int8 scales a
            call's activations together); a larger fp32 batch moves scores by float rounding.
        verify: check every file against the sha256 in ``crossrank.json`` before loading.
        max_length: a narrower window than the artifact's (tokens per pair), e.g. to trade
            quality for speed; default the artifact's ``max_length``.
        score_store: a folder of persistent score stores
            (:mod:`~crossrank.runtime.score_store`): pairs scored before with this artifact,
            precision, window, CPU kernel class and backend version are read from it instead
            of being run again. Needs the default batching (a pair's score independent of its
            batch-mates).
    """

    def __init__(
        self,
        model_dir: str | Path,
        precision: Precision = "fp32",
        threads: int | None = None,
        batch_size: int | None = None,
        verify: bool = True,
        max_length: int | None = None,
        score_store: str | Path | None = None,
    ) -> None:
        precision = resolve_precision(model_dir, precision)
        if score_store is not None and batch_size is not None:
            raise ValueError(
                f"expected batch_size None with a score store, got {batch_size} (a stored "
                "score must not depend on its batch-mates)"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"expected batch_size >= 1 or None, got {batch_size}")
        if precision == "int8" and batch_size not in (None, 1):
            raise ValueError(
                f"expected batch_size 1 or None with int8 (one pair per call keeps a score "
                f"independent of its batch-mates), got {batch_size}"
            )
        self.model_dir = Path(model_dir)
        self.manifest = Manifest.load(self.model_dir)
        name = MODEL_FILES[precision]
        if verify:
            for file in self.manifest.files:
                if file.endswith(".onnx") and file != name:
                    continue
                verify_file(self.model_dir, self.manifest, file)
        model_path = self.model_dir / name
        if not model_path.is_file():
            raise ArtifactError(f"{model_path}: missing (export with --int8 for int8)")
        self.precision = precision
        try:
            self.max_length = int(self.manifest.max_length)
            self.tokenizer = tokenizer_from_config(self.manifest.tokenizer, self.model_dir)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{self.model_dir / 'crossrank.json'}: expected 'max_length' and a valid "
                f"'tokenizer' entry ({exc!r})"
            ) from None
        if max_length is not None:
            if not 8 <= max_length <= self.max_length:
                raise ValueError(
                    f"expected max_length between 8 and the artifact's {self.max_length}, "
                    f"got {max_length}"
                )
            self.max_length = max_length
        self.has_answer_head = self.manifest.has_answer_head
        outputs = ("scores", "answer_logit") if self.has_answer_head else ("scores",)
        try:
            self.backend: Backend = (
                OpenVinoBackend(
                    model_path, threads, outputs, "int8" if precision == "int8-ov" else "float"
                )
                if precision in ("bf16", "int8-ov")
                else OnnxRuntimeBackend(model_path, threads, outputs)
            )
        except ImportError:  # a missing optional install: its own message says which
            raise
        except Exception as exc:
            raise ArtifactError(f"{model_path}: could not load it ({exc})") from exc
        self.batch_size = batch_size or self.backend.batch_size
        self.batch_tokens = None if batch_size else self.backend.batch_tokens
        self.sha256 = artifact_sha256(self.model_dir)
        self.store = (
            None
            if score_store is None
            else ScoreStore.for_model(
                score_store, self._scoring_files(name), precision, self.max_length, len(outputs)
            )
        )

    def _scoring_files(self, graph: str) -> dict:
        """What decides a pair's outputs: the graph read, the tokenizer and its files (the
        manifest's fusion fits and novelty references do not)."""
        files = self.manifest.files
        kept = {f: h for f, h in files.items() if f == graph or not f.endswith((".onnx", ".npy"))}
        return {"files": kept, "tokenizer": self.manifest.tokenizer}

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Relevance logits (float32), one per document, in the documents' order."""
        return self._score_all(query, documents)[0]

    def score_with_answer(
        self, query: str, documents: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Relevance logits and, with an answer head, the probability that each document
        answers the query (``None`` for models without one)."""
        out = self._score_all(query, documents)
        return out[0], (_sigmoid(out[1]) if self.has_answer_head else None)

    def _score_all(self, query: str, documents: Sequence[str]) -> np.ndarray:
        if isinstance(documents, str):
            raise TypeError("expected a sequence of documents, got a single str")
        documents = list(documents)
        if not documents:
            return np.zeros((len(self.backend.outputs), 0), dtype=np.float32)
        warn_if_swapped(self.tokenizer, query, documents)
        return self.outputs_of_pairs([query] * len(documents), documents)

    def score_pairs(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        groups: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Scores for arbitrary (query, document) pairs, batched by length.

        ``groups`` (one label per pair) keeps pairs with different labels out of the same
        inference call: each group is batched exactly as if it were scored alone, so its
        scores do not depend on the other groups (int8 quantizes a call's activations
        together). The server passes one group per request when it merges requests.
        """
        return self.outputs_of_pairs(queries, documents, groups)[0]

    def outputs_of_pairs(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        groups: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Every graph output for the pairs, ``[outputs, pairs]``: scores, then answer logits."""
        check_texts(queries, documents)  # before sorting, so an error names the caller's index
        if self.store is None:
            return self._run_pairs(queries, documents, groups)
        return self.store.outputs(queries, documents, groups, self._run_pairs)

    def _run_pairs(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        groups: Sequence[int] | None = None,
    ) -> np.ndarray:
        out = np.zeros((len(self.backend.outputs), len(documents)), dtype=np.float32)
        if not documents:
            return out
        # Tokenize every text once (each distinct query once), then pack each call's pairs.
        tok, window = self.tokenizer, self.max_length
        unique = list(dict.fromkeys(queries))
        by_query = dict(zip(unique, tok.token_ids(unique, window), strict=True))
        shortest = min(len(ids) for ids in by_query.values())
        doc_budget = max(1, window - 3 - min(shortest, query_cap(window)))
        doc_ids = tok.token_ids(documents, doc_budget)
        query_ids = [by_query[q] for q in queries]
        # The packed length: pack_pairs cuts a pair that does not fit to exactly the window.
        lengths = [
            min(window, len(q) + len(d) + 3) for q, d in zip(query_ids, doc_ids, strict=True)
        ]
        for idx in plan_batches(lengths, groups, self.batch_size, self.batch_tokens, window):
            enc = pack_pairs(
                [query_ids[i] for i in idx],
                [doc_ids[i] for i in idx],
                window,
                tok.cls_id,
                tok.sep_id,
                tok.pad_id,
            )
            out[:, idx] = self.backend.run(enc.as_dict())
        return out

    def rerank(
        self,
        *,
        query: str,
        documents: Sequence[Any],
        top_k: int | None = None,
        min_answer: float | None = None,
    ) -> list[Ranked]:
        """The ``top_k`` best documents, sorted by descending score (ties keep input order).

        Documents are strings, ``{"id", "text"}`` mappings or objects with ``text``; the
        caller's list is not modified. ``min_answer`` drops documents whose answer
        probability is below it (models with an answer head only). Both texts are keyword
        arguments: a cross-encoder is not symmetric, and a swapped pair scores differently.
        """
        if top_k is not None and top_k < 0:
            raise ValueError(f"expected top_k >= 0 or None, got {top_k}")
        if min_answer is not None and not self.has_answer_head:
            raise ValueError(
                f"{self.model_dir}: expected a model with an answer head for min_answer, "
                "got one without (export a checkpoint trained with answer_head: true)"
            )
        items = [candidate(c, i) for i, c in enumerate(documents)]
        scores, answers = self.score_with_answer(query, [text for _, text in items])
        order = np.argsort(-scores, kind="stable")
        if min_answer is not None:
            order = order[answers[order] >= min_answer]
        order = order[: top_k if top_k is not None else len(items)]
        return [
            Ranked(
                int(i),
                items[i][0],
                float(scores[i]),
                None if answers is None else float(answers[i]),
            )
            for i in order
        ]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))).astype(np.float32)
