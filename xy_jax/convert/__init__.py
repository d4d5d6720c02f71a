"""Conversion to and from Hugging Face checkpoints."""
