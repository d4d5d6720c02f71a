"""The one training loop and the stages that plug into it."""
