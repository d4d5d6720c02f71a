"""The other side of our speed comparisons: transformers + PyTorch, llama.cpp."""
