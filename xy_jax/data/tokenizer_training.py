"""Training a sentencepiece model with LLaMA-compatible settings."""

from __future__ import annotations

import os

import sentencepiece as spm

from xy_jax.data import synthetic_text


def train_tokenizer(model_prefix: str, vocab_size: int = 2048, text_file: str | None = None) -> str:
  """Train on `text_file` (default: the shipped synthetic corpus); returns the `.model` path."""
  if text_file is None:
    text_file = model_prefix + ".corpus.txt"
    with open(text_file, "w", encoding="utf-8") as f:
      f.write("\n".join(synthetic_text.corpus_lines()) + "\n")
  spm.SentencePieceTrainer.train(
      input=text_file, model_prefix=model_prefix, vocab_size=vocab_size, model_type="bpe",
      character_coverage=0.9995, byte_fallback=True, split_digits=True,
      normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
      allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=3,
      pad_piece="<pad>", num_threads=os.cpu_count() or 1, minloglevel=2, seed_sentencepiece_size=100000,
      hard_vocab_limit=True)
  return model_prefix + ".model"
