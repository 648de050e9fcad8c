"""Kernels and feature maps of a trained 2-D ConvNet (lecture 14.1: kernels slide over the image;
each layer's feature maps have a size set by stride and padding; layers go from edges to shapes).

  python -m experiments.analysis.feature_maps RUN [--example 0] [--role test] [--out DIR]
      [--name NAME]

writes to DIR (default: the run) NAME_kernels.png (the first layer's kernels), NAME_maps.png (one
input and every conv block's feature maps, titled with their shape and the kernel, stride and
padding that made them), NAME_top.png (for each block, the input patches, over the split, that
activate its first channels most: the block's receptive field around the strongest position) and
NAME_layers.json (the shapes and receptive fields); NAME defaults to the run's folder name.
"""
import argparse
import dataclasses
import json
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nets.cnn import ConvNet, per_block  # noqa: E402
from train import checkpoint, data, log  # noqa: E402
from train.config import ConfigError  # noqa: E402

CHANNELS = 8  # channels shown per block in NAME_top.png
TOP = 6  # patches per channel


@dataclasses.dataclass
class Layer:
  """One conv block: how its feature map was made, and the input window each of its positions
  sees (receptive field `size`; position i's window is centred on input pixel start + i * jump)."""
  name: str
  kernel: int
  stride: int
  padding: str
  shape: tuple[int, ...]  # (H, W, C) of its feature map
  size: int
  jump: int
  start: float


def pad_before(padding, size: int, kernel: int, stride: int) -> int:
  """The zero rows added before the input, as flax's nn.Conv pads."""
  if padding == "VALID":
    return 0
  if padding == "SAME":
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2
  return padding


def layers(model: ConvNet, maps: list[np.ndarray], input_size: int) -> list[Layer]:
  """Each block's kernel, stride, padding, output shape and receptive field (along one axis;
  square kernels and inputs)."""
  n = len(model.features)
  paddings = (model.padding,) * n if isinstance(model.padding, str) else per_block(
      model.padding, n, "padding")
  size, jump, start, width, out = 1, 1, 0.0, input_size, []
  for i, (k, s, p, fmap) in enumerate(zip(per_block(model.kernel_size, n, "kernel_size"),
                                          per_block(model.strides, n, "strides"), paddings, maps)):
    if i and model.pool != "none":  # the previous block's pooling (window = stride = pool_size)
      q = model.pool_size
      size, start = size + (q - 1) * jump, start + (q - 1) / 2 * jump
      jump, width = jump * q, width // q
    start += ((k - 1) / 2 - pad_before(p, width, k, s)) * jump
    size, jump, width = size + (k - 1) * jump, jump * s, fmap.shape[1]
    out.append(Layer(f"block{i}", k, s, str(p), tuple(fmap.shape[1:]), size, jump, start))
  return out


def feature_maps(model, variables, x) -> list[np.ndarray]:
  """Every conv block's activations (B, H, W, C), as the model sows them."""
  _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
  inter = state["intermediates"]
  return [np.asarray(inter[f"block{i}"][0]) for i in range(len(model.features))]


def patch(image: np.ndarray, layer: Layer, row: int, col: int) -> np.ndarray:
  """The input window (size x size) that position (row, col) of `layer` sees; outside the image:
  the image's minimum (what zero padding of a normalised image is close to)."""
  half = (layer.size - 1) / 2
  top, left = (int(round(layer.start + i * layer.jump - half)) for i in (row, col))
  h, w = image.shape[:2]
  out = np.full((layer.size, layer.size), image.min())
  r0, c0 = max(top, 0), max(left, 0)
  r1, c1 = min(top + layer.size, h), min(left + layer.size, w)
  out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1, 0]
  return out


def top_patches(images, maps, layer_list, channels=CHANNELS, top=TOP):
  """[block][channel] -> the `top` patches (from different images) where that channel fires most,
  strongest first."""
  out = []
  for fmap, layer in zip(maps, layer_list):
    per_channel = []
    for c in range(min(channels, fmap.shape[-1])):
      peak_BP = fmap[..., c].reshape(len(fmap), -1)  # P: positions
      best = np.argsort(-peak_BP.max(1))[:top]
      per_channel.append([patch(images[b], layer, *np.unravel_index(peak_BP[b].argmax(),
                                                                    fmap.shape[1:3]))
                          for b in best])
    out.append(per_channel)
  return out


def plot_kernels(kernel_HWIO, title, path):
  k = kernel_HWIO[:, :, 0]  # first input channel (grey images have one)
  n = k.shape[-1]
  cols = min(n, 8)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 1, 1.2 * rows + 0.4), squeeze=False,
                           layout="constrained")
  for i, ax in enumerate(axes.flat):
    ax.axis("off")
    if i < n:
      lim = np.abs(k[..., i]).max()
      ax.imshow(k[..., i], cmap="RdBu_r", vmin=-lim, vmax=lim)
      ax.set_title(f"{i}", fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_maps(image, maps, layer_list, title, path, channels=16):
  """The input, then a row a block: its first `channels` feature maps."""
  cols = min(channels, max(m.shape[-1] for m in maps))
  fig = plt.figure(figsize=(0.9 * cols, 1.3 * (len(maps) + 1) + 0.3), layout="constrained")
  rows = fig.subfigures(len(maps) + 1, 1)
  axes = rows[0].subplots(1, cols, squeeze=False)[0]
  axes[0].imshow(image[..., 0], cmap="gray")
  rows[0].suptitle(f"input {'x'.join(map(str, image.shape))}", fontsize=8, x=0.01, ha="left")
  for ax in axes:
    ax.axis("off")
  for sub, fmap, layer in zip(rows[1:], maps, layer_list):
    axes = sub.subplots(1, cols, squeeze=False)[0]
    for c, ax in enumerate(axes):
      ax.axis("off")
      if c < fmap.shape[-1]:
        ax.imshow(fmap[0, ..., c], cmap="magma")
    sub.suptitle(f"{layer.name}: conv {layer.kernel}x{layer.kernel}, stride {layer.stride}, "
                 f"padding {layer.padding} -> {'x'.join(map(str, layer.shape))} (channels 0-"
                 f"{min(cols, fmap.shape[-1]) - 1}); receptive field {layer.size}x{layer.size}",
                 fontsize=8, x=0.01, ha="left")
  fig.suptitle(title, fontsize=9)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_top(patches, layer_list, title, path):
  """One panel a block (side by side, left to right: low to high level), a row a channel."""
  rows = max(len(p) for p in patches)
  fig = plt.figure(figsize=(len(patches) * (0.75 * TOP + 0.3), 0.8 * rows + 0.8),
                   layout="constrained")
  for sub, per_channel, layer in zip(fig.subfigures(1, len(patches)), patches, layer_list):
    axes = sub.subplots(rows, TOP, squeeze=False)
    for ax in axes.flat:
      ax.axis("off")
    for c, found in enumerate(per_channel):
      for ax, p in zip(axes[c], found):
        ax.imshow(p, cmap="gray")
    sub.suptitle(f"{layer.name} ({layer.size}x{layer.size} patches)\nrows: channels 0-"
                 f"{len(per_channel) - 1}", fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def analyse(workdir: str, example: int = 0, role: str = "test", out: str | None = None,
            name: str | None = None) -> dict:
  """Writes the three plots and NAME_layers.json; returns the JSON's content."""
  config, model, variables, step = checkpoint.load_for_inference(workdir)
  if not isinstance(model, ConvNet) or not model.features:
    raise ConfigError(f"{workdir} trained {config.model.name!r} without conv blocks, not a ConvNet")
  reader = data.reader(config.dataset, role)
  batch = reader(np.arange(len(reader)))
  images = batch["x"]
  if images.ndim != 4:
    raise ConfigError(f"{workdir} trained on {config.dataset.name!r}, not on images")
  if not 0 <= example < len(images):
    raise ConfigError(f"--example must be in [0, {len(images)})")
  maps = [np.concatenate(m) for m in zip(*(feature_maps(model, variables, images[i:i + 500])
                                           for i in range(0, len(images), 500)))]
  layer_list = layers(model, maps, images.shape[1])
  name = name or os.path.basename(os.path.normpath(workdir))
  out = out or workdir
  os.makedirs(out, exist_ok=True)
  dataset = data.role_dataset(config.dataset, role).name
  what = f"{os.path.relpath(workdir)} ({dataset}, step {step})"
  plot_kernels(np.asarray(variables["params"]["Conv_0"]["kernel"]),
               f"{what}: the first layer's {maps[0].shape[-1]} kernels",
               os.path.join(out, f"{name}_kernels.png"))
  label = reader.info.features["label"].int2str(int(batch["label"][example]))
  plot_maps(images[example], [m[example:example + 1] for m in maps], layer_list,
            f"{what}: {role} example {example} ({label})",
            os.path.join(out, f"{name}_maps.png"))
  plot_top(top_patches(images, maps, layer_list), layer_list,
           f"{what}: the {role} patches that activate each channel most",
           os.path.join(out, f"{name}_top.png"))
  result = {"run": os.path.relpath(workdir), "dataset": dataset, "step": step,
            "input": list(images.shape[1:]), "layers": [dataclasses.asdict(l) for l in layer_list]}
  log.write_json(os.path.join(out, f"{name}_layers.json"), result)
  return result


def layers_markdown(result: dict) -> str:
  shape = "x".join(map(str, result["input"]))
  lines = [f"`{result['run']}` on {result['dataset']}, input {shape}:",
           "", "| block | kernel | stride | padding | feature map | receptive field |",
           "|---|---|---|---|---|---|"]
  lines += [f"| {l['name']} | {l['kernel']}x{l['kernel']} | {l['stride']} | {l['padding']} | "
            f"{'x'.join(map(str, l['shape']))} | {l['size']}x{l['size']} |"
            for l in result["layers"]]
  return "\n".join(lines)


def readme_blocks(docs: str = "docs") -> dict[str, str]:
  """`feature_maps`: the layer tables of the runs shown in docs/feature_maps/."""
  folder = os.path.join(docs, "feature_maps")
  found = sorted(f for f in os.listdir(folder) if f.endswith("_layers.json")) if os.path.isdir(
      folder) else []
  tables = []
  for f in found:
    with open(os.path.join(folder, f)) as fh:
      tables.append(layers_markdown(json.load(fh)))
  return {"feature_maps": "\n\n".join(tables) or "(not run yet)"}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdir")
  parser.add_argument("--example", type=int, default=0, help="index in the split")
  parser.add_argument("--role", default="test", choices=data.ROLES, help="the split to read")
  parser.add_argument("--out", default=None, help="default: the workdir")
  parser.add_argument("--name", default=None, help="file name prefix; default: the run's folder")
  args = parser.parse_args(argv)
  try:
    print(layers_markdown(analyse(args.workdir, args.example, args.role, args.out, args.name)))
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
