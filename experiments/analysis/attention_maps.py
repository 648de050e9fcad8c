"""python -m experiments.analysis.attention_maps RUN [--example 0] [--tokens 48] [--out DIR]
    [--name maps]

Attention weights of a trained Transformer (classifier or LM), one heatmap per layer and head,
for one eval example: OUT/attention_NAME.png, and the weights as OUT/attention_NAME.json.
Rows are queries, columns keys; a classifier's first token is [CLS], the others are patches.
"""
import argparse
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nets.transformer import Transformer, attention_weights  # noqa: E402
from train import checkpoint, data, log  # noqa: E402
from train.config import ConfigError  # noqa: E402
from train.tools import positive_int  # noqa: E402


def token_labels(config, x, n: int) -> list[str]:
  if data.spec_of(config.dataset.name).text:
    chars = data.vocabulary(config.dataset)
    return [repr(chars[i])[1:-1] for i in x[:n]]
  return ["CLS"] + [f"p{i}" for i in range(n - 1)]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdir", help="a finished or checkpointed run of a Transformer")
  parser.add_argument("--example", type=int, default=0, help="index in the validation split")
  parser.add_argument("--tokens", type=positive_int, default=48, help="show the first N queries and keys")
  parser.add_argument("--out", default=None, help="default: the workdir")
  parser.add_argument("--name", default="maps", help="the files' names: attention_NAME.png, .json")
  args = parser.parse_args(argv)
  try:
    config, model, variables, step = checkpoint.load_for_inference(args.workdir)
    if not isinstance(model, Transformer):
      raise ConfigError(f"{args.workdir} trained {config.model.name!r}, not a Transformer")
    if model.attention_kernel != "xla":
      model = model.clone(attention_kernel="xla")  # same params; this kernel exposes the weights
    reader = data.reader(config.dataset, "validation")
    if not 0 <= args.example < len(reader):
      raise ConfigError(f"--example must be in [0, {len(reader)})")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  x = reader(np.array([args.example]))["x"]
  weights_LNTS = np.asarray(attention_weights(model, variables["params"], x)[:, 0])
  n = min(args.tokens, weights_LNTS.shape[-1])
  weights_LNTS = weights_LNTS[..., :n, :n]
  labels = token_labels(config, x[0], n)

  layers, heads = weights_LNTS.shape[:2]
  fig, axes = plt.subplots(layers, heads, figsize=(2.6 * heads, 2.6 * layers), squeeze=False)
  for (layer, head), ax in np.ndenumerate(axes):
    ax.imshow(weights_LNTS[layer, head], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"layer {layer} head {head}", fontsize=8)
    ticks = range(0, n, max(1, n // 12))
    ax.set_xticks(list(ticks), [labels[i] for i in ticks], fontsize=5, rotation=90)
    ax.set_yticks(list(ticks), [labels[i] for i in ticks], fontsize=5)
  fig.suptitle(f"{os.path.basename(os.path.normpath(args.workdir))}, step {step}, eval example "
               f"{args.example}: attention weights (rows: queries, columns: keys)", fontsize=9)
  fig.tight_layout()
  out = args.out or args.workdir
  os.makedirs(out, exist_ok=True)
  fig.savefig(os.path.join(out, f"attention_{args.name}.png"), dpi=120)
  plt.close(fig)
  log.write_json(os.path.join(out, f"attention_{args.name}.json"),
                 {"tokens": labels, "step": step, "weights_LNTS": weights_LNTS.round(4).tolist()})
  print(f"wrote {os.path.join(out, f'attention_{args.name}.png')}")


if __name__ == "__main__":
  main()
