"""Language routing: by script share with no downloaded model (Chinese (Han) vs Latin-script text),
or by a fastText language-ID model when `clean.language_model` names one.

Script share: "zh" when Han characters are at least `zh_share` of the letters (Han + Latin); "en"
(any Latin-script language) when Latin letters are; "other" when the text has neither.

A model (Facebook's lid.176.bin / .ftz, labels __label__zh, __label__en, ...; GlotLID's model.bin
or NLLB's, labels __label__cmn_Hani, __label__eng_Latn, ...) is loaded as datatrove's LanguageFilter
loads it (the `fasttext` package, fasttext.FastText._FastText), once per worker process. Its top
label becomes "zh" for any Chinese language (zh, zho, cmn, yue, wuu, lzh, ... in any script), "en"
for English, otherwise the label's ISO code without the script (fr, deu, ...: give it
`clean.thresholds` to keep it); "other" when the label's probability is below `min_score`.
"""

from __future__ import annotations

import os
import struct

from datatrove.pipeline.base import PipelineStep

from xy_jax.data.clean import charclass
from xy_jax.errors import ConfigError

# ISO 639 codes of the Chinese (Sinitic) languages and the macrolanguage, as lid.176 and GlotLID
# write them: Mandarin, Cantonese, Wu, Literary Chinese, Gan, Hakka, Xiang, Min (Nan, Dong, Bei,
# Zhong, Pu-Xian), Jin, Huizhou.
CHINESE = frozenset({"zh", "zho", "chi", "cmn", "yue", "wuu", "lzh", "gan", "hak", "hsn", "nan", "cdo", "mnp",
                     "czo", "cpx", "cjy", "czh"})
ENGLISH = frozenset({"en", "eng"})

_FASTTEXT_MAGIC = 793712314  # the first int32 of a fastText .bin / .ftz
_SUPERVISED = 3  # args.model of a classifier (cbow: 1, skipgram: 2)
_MODELS: dict[str, object] = {}  # path -> loaded model, one per worker process


def script_counts(text: str) -> tuple[int, int]:
  """Han characters ([CJK]) and Latin letters ([A-Za-z\u00c0-\u024f]) in the text."""
  flags = charclass.flags_of(text)
  return charclass.count(flags, charclass.HAN), charclass.count(flags, charclass.LATIN)


def detect_language(text: str, zh_share: float = 0.3) -> str:
  han, latin = script_counts(text)
  if han + latin == 0:
    return "other"
  # A Chinese character carries about a word's worth of text, a Latin letter a fifth of one.
  return "zh" if han / (han + latin / 5) >= zh_share else "en"


def language_of_label(label: str) -> str:
  """Our language code for a fastText label: __label__zh / __label__cmn_Hani / __label__zho_Hant ->
  "zh", __label__en / __label__eng_Latn -> "en", __label__fr -> "fr", __label__deu_Latn -> "deu"."""
  code = label.removeprefix("__label__").replace("-", "_").split("_")[0].lower()
  if code in CHINESE:
    return "zh"
  if code in ENGLISH:
    return "en"
  return code or "other"


def check_language_model(path: str) -> None:
  """One line naming clean.language_model when `path` is not a fastText classifier we can read (its
  header only: the model itself loads in each task)."""
  where = f"clean.language_model={path!r}"
  try:
    from fasttext.FastText import _FastText  # noqa: F401
  except ImportError:
    raise ConfigError(f"{where} needs the fasttext package: pip install fasttext-numpy2-wheel") from None
  try:
    with open(os.path.expanduser(path), "rb") as f:
      head = f.read(40)
  except OSError as e:
    raise ConfigError(f"{where}: cannot read it ({e.strerror or e})") from None
  if len(head) < 40 or struct.unpack_from("<i", head)[0] != _FASTTEXT_MAGIC:
    raise ConfigError(f"{where} is not a fastText model (.bin or .ftz, e.g. lid.176.bin or GlotLID's model.bin)")
  if struct.unpack_from("<i", head, 36)[0] != _SUPERVISED:
    raise ConfigError(f"{where} holds word vectors, not a fastText classifier (a language-ID model such as "
                      "lid.176.bin or GlotLID's model.bin)")


def load_language_model(path: str):
  """The fastText model at `path`, loaded once per process (as datatrove's FastTextLID does)."""
  model = _MODELS.get(path)
  if model is None:
    from fasttext.FastText import _FastText
    try:
      model = _FastText(path)
    except ValueError as e:  # "... cannot be opened for loading!", "... has wrong file format!"
      raise ConfigError(f"clean.language_model={path!r}: {e}") from None
    _MODELS[path] = model
  return model


def model_language(model, text: str, min_score: float) -> str:
  if not any(map(str.isalpha, text)):  # the model guesses, confidently, for text without letters
    return "other"
  # fastText predicts one line: datatrove's FastTextLID joins the lines with spaces too
  (label,), (score,) = model.predict(text.replace("\n", " "), k=1)
  return language_of_label(label) if score >= min_score else "other"


class LanguageTag(PipelineStep):
  """Sets doc.metadata["language"] ("zh", "en", "other" or, with a model, another ISO code) for the
  per-language thresholds."""

  type = "✂️ - CLEAN"
  name = "language"

  def __init__(self, zh_share: float = 0.3, model: str | None = None, min_score: float = 0.5):
    super().__init__()
    self.zh_share = zh_share
    self.model = os.path.abspath(os.path.expanduser(model)) if model else None
    self.min_score = min_score

  def run(self, data, rank: int = 0, world_size: int = 1):
    model = load_language_model(self.model) if self.model else None
    for doc in data:
      if model is None:
        doc.metadata["language"] = detect_language(doc.text, self.zh_share)
      else:
        doc.metadata["language"] = model_language(model, doc.text, self.min_score)
      self.stat_update(f"lang_{doc.metadata['language']}")
      yield doc
