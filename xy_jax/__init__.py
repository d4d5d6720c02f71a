"""xy_jax: the XuanYuan financial-LLM training pipeline in JAX."""

__version__ = "0.1.0"
