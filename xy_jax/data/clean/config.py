"""CleanSettings from a config's `clean` section (tools/clean_data.py --config; configs/clean_corpus.py)."""

from __future__ import annotations

from xy_jax.data.clean.pipeline import CleanSettings
from xy_jax.data.clean.quality import thresholds_from_config

SETTING_FIELDS = ("n_grams", "bands", "rows", "num_perm", "zh_share", "workers", "tasks", "text_key", "t2s",
                  "gzip_level", "language_model", "language_min_score")


def settings_from_config(section) -> CleanSettings:
  """The fields `section` names over CleanSettings' defaults (inputs, out, executor and ray_address
  are the caller's)."""
  settings = CleanSettings(**{k: section[k] for k in SETTING_FIELDS if k in section})
  if "thresholds" in section:
    settings.thresholds = thresholds_from_config(section["thresholds"])
  return settings
