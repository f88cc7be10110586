"""Evaluation: IR metrics, runs over a split, the candidate-budget sweep, reports."""
