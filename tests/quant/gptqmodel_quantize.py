"""GPTQ 4-bit by gptqmodel's own quantiser on CPU (run in release_env's venv), weights dequantised.

  python gptqmodel_quantize.py HF_DIR TOKENS.npy OUT.npz [--group_size 32] [--damp 0.05]
                               [--act_group_aware]

HF_DIR is a float Llama directory, TOKENS.npy int32 calibration rows [N, T] (one calibration
sample each, all tokens used). The model is loaded in float32: on CPU gptqmodel would otherwise
load it in bfloat16 and gather its Hessians from bfloat16 activations. Its other defaults are kept
(true-sequential q/k/v, o, gate/up, down; each layer fed by the quantised earlier ones; block 128;
symmetric 2*absmax/15 grid with zero 8; no desc_act, no static groups, no MSE scale search),
except `act_group_aware`, off unless asked: gptqmodel turns this group-aware reordering (GAR) on by
default and plain GPTQ has none. The saved GPTQ v1 checkpoint is read back and written to OUT.npz as
float32 [in, out] per linear ("model.layers.0.self_attn.q_proj", ...), dequantised as
(nibble - qzero - 1) * scale[g_idx].
"""

import argparse
import glob
import os
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file


def dequantize(tensors: dict, prefix: str) -> np.ndarray:
  qweight = tensors[f"{prefix}.qweight"].view(np.uint32)  # [in/8, out], input row 8i+j in nibble j
  nibbles = (qweight[:, None, :] >> (4 * np.arange(8, dtype=np.uint32))[None, :, None]) & 15
  q = nibbles.reshape(-1, qweight.shape[1]).astype(np.float32)
  qzeros = tensors[f"{prefix}.qzeros"].view(np.uint32)  # [groups, out/8]
  zeros = ((qzeros[:, :, None] >> (4 * np.arange(8, dtype=np.uint32))) & 15).reshape(qzeros.shape[0], -1)
  g_idx = tensors[f"{prefix}.g_idx"].astype(np.int64)
  scales = tensors[f"{prefix}.scales"].astype(np.float32)
  return (q - zeros[g_idx].astype(np.float32) - 1) * scales[g_idx]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("hf_dir")
  parser.add_argument("tokens")
  parser.add_argument("out")
  parser.add_argument("--group_size", type=int, default=32)
  parser.add_argument("--damp", type=float, default=0.05)
  parser.add_argument("--act_group_aware", action="store_true")
  args = parser.parse_args()

  from gptqmodel import GPTQModel, QuantizeConfig
  qcfg = QuantizeConfig(bits=4, group_size=args.group_size, desc_act=False, sym=True,
                        damp_percent=args.damp, act_group_aware=args.act_group_aware,
                        offload_to_disk=False)
  model = GPTQModel.load(args.hf_dir, qcfg, device="cpu", dtype=torch.float32)
  rows = np.load(args.tokens)
  calibration = [{"input_ids": torch.from_numpy(r).long()[None], "attention_mask": torch.ones(1, len(r), dtype=torch.long)}
                 for r in rows]
  model.quantize(calibration, batch_size=1)
  with tempfile.TemporaryDirectory() as saved:
    model.save(saved)
    tensors = {k: v for f in glob.glob(os.path.join(saved, "*.safetensors")) for k, v in load_file(f).items()}
  linears = sorted(k[:-len(".qweight")] for k in tensors if k.endswith(".qweight"))
  np.savez(args.out, **{name: dequantize(tensors, name) for name in linears})
  print(f"{len(linears)} linears quantised")


if __name__ == "__main__":
  main()
