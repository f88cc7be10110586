"""The two-stage pipeline: retrieve then rerank, score fusion, stages built from a spec, pinning."""
