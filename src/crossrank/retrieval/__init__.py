"""First-stage retrievers."""

from crossrank.retrieval.base import Hit, Retriever
from crossrank.retrieval.bm25 import BM25Params, BM25Retriever, cached_bm25

__all__ = ["BM25Params", "BM25Retriever", "Hit", "Retriever", "cached_bm25"]
