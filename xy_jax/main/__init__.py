"""Command-line programs (`python -m xy_jax.main.<program>`); tools/<program>.py are thin wrappers."""
