"""Decoder model, heads and presets."""
