"""The stages this package ships, registered by name for `config.stage`.

The composition root: entry points (training, planning, tools) import this module; `train`
itself never imports the layers above it.
"""

from xy_jax.rl import ppo
from xy_jax.train import dpo, pretrain, reward
from xy_jax.train.task import register

register("pretrain", pretrain.build, lora=True)
register("sft", pretrain.build, lora=True)
register("reward", reward.build, reward.validate_config)
register("ppo", ppo.build, ppo.validate_config, start_field="ppo.actor_checkpoint", lora=True)  # the actor
register("dpo", dpo.build, dpo.validate_config, lora=True)
