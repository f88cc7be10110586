"""crossrank: train, export and serve cross-encoder rerankers."""

__version__ = "0.1.0"
