"""Weight-only int8 / int4 quantisation for inference."""
