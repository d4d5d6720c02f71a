"""The error types, on the ground floor so any layer can raise them without importing another.

Each means "the input is wrong" and reaches a person as one line (exit code 2, see cli.USER_ERRORS)
naming the config field, the file (and line) or the mesh axis; TrainingError ends a run that cannot
go on (exit 3).
"""


class ConfigError(ValueError):
  """A config field has a value we cannot use; the message names the field."""


class ShardingError(ValueError):
  """A shape does not fit the mesh; the message names the tensor, dimension and mesh axis."""


class ConversionError(RuntimeError):
  """One line for a person: names the file and, where it applies, the tensor."""


class CheckpointError(RuntimeError):
  """A checkpoint is missing, partial or unreadable; the message names the path."""


class PeerFailed(RuntimeError):
  """Another process (process 0) failed; its log has the reason."""


class TrainingError(RuntimeError):
  """The run cannot go on (e.g. non-finite losses); the message says why and what to try."""
