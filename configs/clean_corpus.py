"""Curation of raw text before tokenisation (tools/clean_data.py --config configs/clean_corpus.py).

Every field is optional except inputs and out; the values below are the defaults, written out so
that a copy of this file is the place to change them. A pretraining config may hold the same
`clean` section beside its `data` one and be passed as it is.
"""

from ml_collections import ConfigDict


def get_config(arg=None):
  del arg
  clean = ConfigDict()
  clean.inputs = ["data/pretrain/finance.jsonl", "data/raw/finance_web.jsonl"]  # paths, globs, folders
  clean.out = "runs/clean/finance"  # DIR/*.jsonl.gz, DIR/report.json (+ .png), DIR/raw_inputs.json
  clean.executor = "local"  # or "ray" (with clean.ray_address: None starts a local Ray)
  clean.ray_address = None
  clean.workers = 2  # parallel tasks
  clean.text_key = "text"  # the .jsonl field holding the text; every other field is kept
  clean.t2s = False  # traditional -> simplified Chinese through OpenCC, before normalising
  # MinHash-LSH: 14 bands x 8 rows over character 5-grams (CJK) or word 5-grams (Latin script);
  # a pair of Jaccard similarity s is caught with probability 1 - (1 - s**8)**14 (0.5 at s ~ 0.72).
  clean.n_grams = 5
  clean.bands = 14
  clean.rows = 8
  clean.num_perm = 112  # bands x rows
  clean.zh_share = 0.3  # CJK share of letters above which a document is Chinese
  # Or route by a fastText language-ID model (a local lid.176.bin or GlotLID model.bin; nothing is
  # downloaded): Chinese -> "zh", English -> "en", others by ISO code (give them clean.thresholds).
  clean.language_model = None
  clean.language_min_score = 0.5  # top-language probability below which a document is "other"
  clean.gzip_level = 3
  # Quality thresholds per language ("zh", "en", or a new one, which starts from "en"'s), e.g.
  # {"zh": {"min_length": 50, "max_digit_frac": 0.5}}; fields: xy_jax/data/clean/quality.py.
  clean.thresholds = {}
  return ConfigDict({"clean": clean})
