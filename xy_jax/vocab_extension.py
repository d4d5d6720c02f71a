"""Extending a causal LM's vocabulary (tokenizer and rows) into a new checkpoint: the core of
`tools/extend_vocab.py`, also run by the demo. See `xy_jax.data.tokenizer_extension` (pieces) and
`xy_jax.models.vocab_resize` (rows)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence

import jax
import numpy as np
from flax import nnx

from xy_jax.weights import layout
from xy_jax.data.sources import SkipReport
from xy_jax.convert.peft_adapter import merged
from xy_jax.data.tokenizer_extension import (base_pieces_of, extend, load_proto, measured_documents,
                                            tokens_per_char, train_pieces)
from xy_jax.io_utils import atomic_output_dir
from xy_jax.models.factory import model_from_values
from xy_jax.models.llama import CausalLM
from xy_jax.errors import ConfigError
from xy_jax.models.vocab_resize import extended_rows
from xy_jax.sharding import LogicalSharding


@dataclasses.dataclass
class Extension:
  base_size: int
  size: int
  new_pieces: int
  padding: int
  tokens_per_char: dict[str, tuple[float, float]]  # held-out documents of each file: before, after
  in_sample: set[str] = dataclasses.field(default_factory=set)  # files too small to hold any out


def learnt_pieces(files: Sequence[str], have: set[str], wanted: int, model_type: str) -> list[str]:
  """Train until the corpus yields `wanted` pieces the base lacks (or all it has)."""
  size = max(2 * wanted, 256)
  new: list[str] = []
  for _ in range(5):
    try:  # skipped records were counted when the documents to measure were read
      pieces = train_pieces(files, size, model_type, SkipReport())
    except RuntimeError as e:  # sentencepiece wants room for every character of the corpus first
      chars = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
      if not chars:
        raise
      size = int(chars.group(1)) + 2 * wanted
      continue
    new = [p for p in pieces if p not in have]
    if len(new) >= wanted or len(pieces) < size * 0.9:  # enough, or the corpus has no more
      break
    size *= 2
  return new


def extend_vocabulary(loaded, source: str, files: Sequence[str], out: str, sharding: LogicalSharding,
                      new_pieces: int | None = None, vocab_size: int | None = None,
                      model_type: str | None = None, pad_to_multiple_of: int = 1,
                      overwrite: bool = False, log: Callable[[str], None] = print) -> Extension:
  """`loaded` (a causal LM with its tokenizer, from `source`) extended with pieces learnt from
  `files` into a new checkpoint at `out` (atomically). A LoRA model is merged first: the new
  checkpoint is a plain model, as continued pretraining starts from."""
  report = SkipReport()
  measured = {f: measured_documents(f, report) for f in files}
  if not any(docs for docs, _ in measured.values()):
    raise ConfigError(f"--corpus: no documents in {', '.join(files)} ({report.summary()})")
  if loaded.tokenizer_file is None:
    raise ConfigError(f"{source}: no tokenizer.model beside the model; the extension appends to "
                      "the base tokenizer, so it needs that file")
  base_tok = loaded.tokenizer_file
  base = load_proto(base_tok)
  base_size = len(base.pieces)
  if vocab_size is not None and vocab_size <= base_size:
    raise ConfigError(f"--vocab_size={vocab_size}: the base tokenizer already has {base_size} pieces; "
                      "ask for more")
  if loaded.cfg.vocab_size != base_size:
    raise ConfigError(f"{source}: vocab_size={loaded.cfg.vocab_size} but its tokenizer has {base_size} "
                      "pieces; new ids must follow the last row, so extend a model whose rows match")
  if loaded.cfg.quant != "none" and not loaded.cfg.lora_rank:
    raise ConfigError(f"{source}: model.quant={loaded.cfg.quant!r}: extend the float checkpoint it was "
                      "quantised from (new rows are means of float rows)")
  wanted = new_pieces or vocab_size - base_size
  model_type = model_type or {1: "unigram", 2: "bpe"}.get(base.trainer_spec.model_type, "bpe")
  log(f"training a {model_type} sentencepiece model on {len(files)} file(s) for {wanted} new pieces")
  new = learnt_pieces(files, {p.piece for p in base.pieces}, wanted, model_type)
  if report.total:
    log(f"corpus: {report.summary()}")
  if not new:
    raise ConfigError(f"--corpus: {', '.join(files)} yields no piece the base tokenizer lacks; "
                      "nothing to extend")
  if len(new) < wanted:
    log(f"warning: the corpus yields only {len(new)} pieces the base lacks ({wanted} asked)")
  ext = extend(base_tok, new, wanted, pad_to_multiple_of)
  log(f"vocabulary: {base_size} + {len(ext.new_pieces)} new + {ext.padding} padding = {ext.size}")

  cfg, model = merged(loaded.model, loaded.cfg, sharding)
  if cfg is not loaded.cfg:
    log(f"folded the LoRA adapters (rank {loaded.cfg.lora_rank}) into the weights")
  # The two vocabulary tables grow on the host; every other array stays where it was loaded.
  base_ids = base_pieces_of(base_tok, ext.new_pieces)
  values = nnx.to_pure_dict(nnx.state(model))
  embed = np.asarray(jax.device_get(values["model"]["embed_tokens"]["weight"]))  # [V, D]
  head = np.asarray(jax.device_get(values["lm_head"]["weight"]))  # [D, V]
  values["model"]["embed_tokens"]["weight"] = extended_rows(embed, base_ids, ext.padding)
  values["lm_head"]["weight"] = np.ascontiguousarray(extended_rows(head.T, base_ids, ext.padding).T)
  cfg = cfg.replace(vocab_size=ext.size)
  model = model_from_values(CausalLM, cfg, sharding, values)

  proto = ext.proto.SerializeToString()
  ratios = {f: (tokens_per_char(base_tok, docs), tokens_per_char(proto, docs))
            for f, (docs, _) in measured.items() if docs}
  in_sample = {f for f, (docs, trained) in measured.items() if docs and trained}
  meta = {"model": cfg.to_dict(), "kind": "causal_lm", "stage": "extend_vocab",
          "source_dtype": loaded.meta.get("source_dtype", cfg.param_dtype),
          "vocab_extension": {"base": os.path.abspath(source), "base_size": base_size,
                              "new_pieces": len(ext.new_pieces), "padding": ext.padding,
                              "size": ext.size, "model_type": model_type,
                              "corpus": [os.path.abspath(f) for f in files],
                              "tokens_per_char": {f: list(r) for f, r in ratios.items()},
                              "in_sample": sorted(in_sample)}}
  with atomic_output_dir(out, overwrite) as tmp:
    tok_file = os.path.join(tmp, "extended.model")
    with open(tok_file, "wb") as f:
      f.write(proto)
    layout.save_model(tmp, nnx.to_pure_dict(nnx.state(model)), meta, 0, tok_file)
    os.remove(tok_file)
  return Extension(base_size, ext.size, len(ext.new_pieces), ext.padding, ratios, in_sample)
