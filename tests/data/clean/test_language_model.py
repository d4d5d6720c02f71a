"""clean.language_model (issue 22): routing by a fastText language-ID model the user names. No model
is downloaded: tiny classifiers are trained here on the test corpus (zh, en and a French-like
vocabulary), one with lid.176's labels and one with GlotLID's."""

import json
import os
import random
import struct
import subprocess
import sys

import pytest

fasttext = pytest.importorskip("fasttext")

from tests.data.clean import corpus  # noqa: E402
from tests.data.clean.shards import read_shards  # noqa: E402
from xy_jax.data.clean.language import LanguageTag, language_of_label  # noqa: E402
from xy_jax.data.clean.pipeline import CleanSettings  # noqa: E402
from xy_jax.data.clean.quality import thresholds_from_config  # noqa: E402
from xy_jax.data.clean.run import clean  # noqa: E402
from xy_jax.errors import ConfigError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FR_WORDS = ("le la les des du une un marché banque taux intérêt société actions obligations fonds économie "
            "croissance politique centrale régulateur risque rendement capital entreprises crédit inflation "
            "consommation exportations devise assurance trimestre bénéfice chiffre affaires actifs passifs "
            "liquidité valorisation hausse baisse stable réforme données analystes prévoient annuelle "
            "soutien renforcer selon avec pour dans sur par cette année est sont été").split()


def fr_doc(rng: random.Random, n_sentences: int = 6) -> str:
  return " ".join(" ".join(rng.choice(FR_WORDS) for _ in range(rng.randint(10, 16))).capitalize() + "."
                  for _ in range(n_sentences))


def train(path, labels: dict[str, str]):
  """A tiny fastText classifier (character 1-3-grams: the Chinese lines have no spaces) in about 0.2 s.
  thread=12: fastText 0.9.2 initialises its input matrix in blocks of a tenth, one per thread
  (facebookresearch/fastText#1061), and with fewer than 10 threads this build leaves the rest as
  whatever the memory held (1e24 seen): training then hits "Encountered NaN." or learns nothing."""
  rng = random.Random(7)
  makers = {"zh": lambda: corpus.zh_doc(rng, 2), "en": lambda: corpus.en_doc(rng, 1), "fr": lambda: fr_doc(rng, 1)}
  lines = [f"__label__{labels[lang]} {make()}" for lang, make in makers.items() for _ in range(150)]
  rng.shuffle(lines)
  data = path.with_suffix(".txt")
  data.write_text("\n".join(lines) + "\n", encoding="utf-8")
  model = fasttext.train_supervised(str(data), dim=16, minn=1, maxn=3, bucket=20000, lr=0.5, epoch=20,
                                    thread=12, seed=1, verbose=0)
  model.save_model(str(path))
  return str(path)


@pytest.fixture(scope="module")
def lid176(tmp_path_factory):
  return train(tmp_path_factory.mktemp("lid") / "lid.bin", {"zh": "zh", "en": "en", "fr": "fr"})


def test_labels_map_to_our_codes():
  for label in ("__label__zh", "__label__zho_Hans", "__label__zho_Hant", "__label__cmn_Hani", "__label__yue_Hant",
                "__label__wuu", "__label__lzh_Hani", "__label__nan_Latn"):
    assert language_of_label(label) == "zh", label
  assert language_of_label("__label__en") == language_of_label("__label__eng_Latn") == "en"
  assert language_of_label("__label__fr") == "fr" and language_of_label("__label__fra_Latn") == "fra"
  assert language_of_label("__label__deu_Latn") == "deu" and language_of_label("__label__ja") == "ja"


def _tag(model, docs, **kw):
  from datatrove.data import Document
  step = LanguageTag(model=model, **kw)
  return [d.metadata["language"] for d in step.run(Document(text=t, id=str(i)) for i, t in enumerate(docs))]


def test_glotlid_labels_route_to_zh_en_and_the_iso_code(tmp_path):
  model = train(tmp_path / "glot.bin", {"zh": "cmn_Hani", "en": "eng_Latn", "fr": "fra_Latn"})
  rng = random.Random(3)
  assert _tag(model, [corpus.zh_doc(rng), corpus.en_doc(rng), fr_doc(rng), "12345 ###"]) == ["zh", "en", "fra", "other"]


def test_low_scores_are_other(lid176):
  rng = random.Random(4)
  docs = [corpus.zh_doc(rng), corpus.en_doc(rng), fr_doc(rng)]
  assert _tag(lid176, docs) == ["zh", "en", "fr"]
  assert _tag(lid176, docs, min_score=1.01) == ["other"] * 3


def _corpus(tmp_path):
  rng = random.Random(11)
  docs = ([("zh", corpus.zh_doc(rng)) for _ in range(10)] + [("en", corpus.en_doc(rng)) for _ in range(10)]
          + [("fr", fr_doc(rng)) for _ in range(10)])
  with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps({"id": i, "lang": lang, "text": t}, ensure_ascii=False) + "\n"
                 for i, (lang, t) in enumerate(docs))
  return str(tmp_path / "in.jsonl")


def _langs_out(out):
  return sorted(r["lang"] for r in read_shards(out))


def test_a_run_routes_by_the_model_and_french_needs_thresholds(tmp_path, lid176):
  inputs = _corpus(tmp_path)
  report = clean([inputs], str(tmp_path / "out"), CleanSettings(workers=1, language_model=lid176))
  quality = report["steps"]["quality"]
  assert quality["dropped"] == {"language fr": 10}
  assert quality["dropped_by_language"] == {"fr: language fr": 10}
  assert _langs_out(tmp_path / "out") == ["en"] * 10 + ["zh"] * 10
  kept = clean([inputs], str(tmp_path / "out_fr"), CleanSettings(workers=1, language_model=lid176,
                                                                 thresholds=thresholds_from_config({"fr": {}})))
  assert kept["steps"]["quality"]["dropped"] == {}
  assert _langs_out(tmp_path / "out_fr") == ["en"] * 10 + ["fr"] * 10 + ["zh"] * 10


def test_a_bad_model_is_one_line_naming_the_field(tmp_path, lid176):
  missing = str(tmp_path / "lid.176.bin")
  with pytest.raises(ConfigError, match=r"^clean\.language_model='.*lid\.176\.bin': cannot read it"):
    CleanSettings(language_model=missing).check()
  (tmp_path / "notes.txt").write_text("not a model")
  with pytest.raises(ConfigError, match="is not a fastText model"):
    CleanSettings(language_model=str(tmp_path / "notes.txt")).check()
  # a word-vector model's header (cc.zh.300.bin's kind): magic, version, dim, ws, epoch, minCount, neg,
  # wordNgrams, loss, model=2 (skipgram), bucket, minn
  (tmp_path / "vectors.bin").write_bytes(struct.pack("<12i", 793712314, 12, 300, 5, 5, 5, 10, 1, 2, 2, 2000000, 5))
  with pytest.raises(ConfigError, match="holds word vectors, not a fastText classifier"):
    CleanSettings(language_model=str(tmp_path / "vectors.bin")).check()
  with pytest.raises(ConfigError, match="clean.language_min_score must be a probability"):
    CleanSettings(language_min_score=1.5).check()
  CleanSettings(language_model=lid176).check()
  # through the command line: exit 2, the error the last line, nothing written
  done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "clean_data.py"), "--input", _corpus(tmp_path),
                         "--out", str(tmp_path / "out"), "--language_model", missing],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stderr[-2000:]
  last = done.stderr.strip().splitlines()[-1]
  assert "clean.language_model=" in last and missing in last
  assert not (tmp_path / "out").exists()
