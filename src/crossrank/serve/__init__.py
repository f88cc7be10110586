"""``crossrank serve``: the reranker behind Cohere- and TEI-compatible HTTP endpoints."""
