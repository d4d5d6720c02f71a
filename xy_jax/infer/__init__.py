"""Inference: KV-cache generation, perplexity, quantisation."""
