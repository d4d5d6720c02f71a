"""Weights: the checkpoint layout, pins, loading, what a run starts from, casts and selections."""
