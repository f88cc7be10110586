"""First-stage retrievers."""

from crossrank.retrieval.base import Hit, Retriever
from crossrank.retrieval.bm25 import BM25Params, BM25Retriever, bm25_for, cached_bm25

__all__ = ["BM25Params", "BM25Retriever", "Hit", "Retriever", "bm25_for", "cached_bm25"]
