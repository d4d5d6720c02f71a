"""RLHF: PPO with actor, reference, critic and reward models."""
