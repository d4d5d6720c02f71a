"""Tokenizer, shipped synthetic data, sources, bucketing and input pipelines."""
