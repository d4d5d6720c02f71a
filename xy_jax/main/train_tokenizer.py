"""Train the small sentencepiece tokenizer the tests and demo use, from the shipped synthetic text.

  python tools/train_tokenizer.py --out xy_jax/assets/tokenizer_tiny.model [--vocab_size 2048]

LLaMA-style settings (BPE, byte fallback, split digits, identity normalisation) so the model
converts to a `transformers` tokenizer that gives the same ids; no dummy prefix, since XuanYuan
prompts begin with their own space (" Human: ...").
"""

import os
import shutil
import tempfile

from absl import app, flags

from xy_jax.data.tokenizer_training import train_tokenizer

_OUT = flags.DEFINE_string("out", "xy_jax/assets/tokenizer_tiny.model", "where to write the .model")
_VOCAB = flags.DEFINE_integer("vocab_size", 2048, "vocabulary size")
_TEXT = flags.DEFINE_string("text", None, "one document per line (default: the shipped synthetic corpus)")


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    model = train_tokenizer(os.path.join(tmp, "tok"), vocab_size=_VOCAB.value, text_file=_TEXT.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    shutil.copyfile(model, _OUT.value)
  print(f"wrote {_OUT.value} (vocab {_VOCAB.value})")


if __name__ == "__main__":
  app.run(main)
