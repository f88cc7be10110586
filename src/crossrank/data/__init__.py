"""Data: BEIR readers, labeled examples and the training data module."""
