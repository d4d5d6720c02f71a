"""Step-indexed batch sources: grain random-access sources whose index is the training step.

Every stage's batches come from one of these, so step i's batch is a pure function of the config,
the seed and i (exact resume, any number of processes). A source also says the row length of
each step's batch (`row_length`), which the loop reports and the MFU estimate uses.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np


class StepSource(Protocol):

  def __len__(self) -> int:
    ...

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of step `step`'s global batch."""

  def row_length(self, step: int) -> int:
    ...


class ShuffledSteps:
  """`per_step` examples a step out of `num_examples`, in a fresh permutation each epoch (seeded by
  (seed, epoch)); tiny sets wrap around. `make_batch(indices, step)` builds this process's rows
  from its share of the step's examples."""

  def __init__(self, num_examples: int, per_step: int, seed: int, num_steps: int,
               make_batch: Callable[[Sequence[int], int], dict[str, np.ndarray]], length: int,
               process_index: int = 0, process_count: int = 1):
    self.num_examples, self.per_step, self.seed, self.num_steps = num_examples, per_step, seed, num_steps
    self.make_batch, self.length = make_batch, length
    self.process_index, self.process_count = process_index, process_count
    self.steps_per_epoch = max(num_examples // per_step, 1)

  def __len__(self) -> int:
    return self.num_steps

  def row_length(self, step: int) -> int:
    return self.length

  def indices(self, step: int) -> np.ndarray:
    """The step's examples, every process's share."""
    epoch, k = divmod(int(step), self.steps_per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
    order = np.resize(order, self.steps_per_epoch * self.per_step)
    return order[k * self.per_step:(k + 1) * self.per_step]

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    share = self.per_step // self.process_count
    mine = self.indices(step)[self.process_index * share:(self.process_index + 1) * share]
    return self.make_batch(mine.tolist(), int(step))
