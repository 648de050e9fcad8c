"""Dataset name -> `tfds.data_source` -> deterministic, checkpointable batches (grain).

Every dataset is a TFDS dataset: our own builders (`train/datasets/`, generated offline) and catalog
ones (`mnist`, `fashion_mnist`, `cifar10`) alike. A batch is `{"x": float32 (B, ...), "label": int32 (B,)}`.
"""
import dataclasses
from collections.abc import Callable, Iterator

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

import train.datasets  # noqa: F401  (registers our builders with TFDS)
from train.config import ConfigError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  input_key: str  # feature holding the input
  mean: tuple[float, ...] = (0.0,)  # per-channel, after scaling to [0, 1] (images)
  std: tuple[float, ...] = (1.0,)
  image: bool = False


DATASETS = {
    "mnist1d": DatasetSpec("x"),  # already standardised by its generator
    "mnist": DatasetSpec("image", (0.1307,), (0.3081,), image=True),
    "fashion_mnist": DatasetSpec("image", (0.2860,), (0.3530,), image=True),
    "cifar10": DatasetSpec("image", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), image=True),
}


def load_source(cfg: ml_collections.ConfigDict, split: str):
  """A random-access `tfds.data_source` split; prepares it first when `cfg.download` allows."""
  try:
    return tfds.data_source(cfg.name, split=split, data_dir=cfg.data_dir or None,
                            download=cfg.download)
  except Exception as e:  # TFDS raises assorted types for a missing dataset, split or data dir
    where = cfg.data_dir or "the TFDS default data dir"
    how = ("run with config.dataset.download=True where the network allows, or copy a prepared "
           f"'{cfg.name}' (array_record format) into {where}" if not cfg.download else str(e))
    raise ConfigError(f"cannot load {cfg.name!r} split {split!r} from {where}: {how}") from e


class Reader:
  """Batches by index: reads the records (from memory when cached), then preprocesses the batch."""

  def __init__(self, cfg: ml_collections.ConfigDict, split: str):
    self.source = load_source(cfg, split)
    self.spec = DATASETS[cfg.name]
    self.cached = self.read_records(np.arange(len(self.source))) if cfg.cache else None

  def __len__(self) -> int:
    return len(self.source)

  def read_records(self, ids) -> dict[str, np.ndarray]:
    records = [self.source[int(i)] for i in ids]
    return {k: np.stack([r[k] for r in records]) for k in (self.spec.input_key, "label")}

  def __call__(self, ids) -> dict[str, np.ndarray]:
    records = ({k: v[ids] for k, v in self.cached.items()} if self.cached is not None
               else self.read_records(ids))
    x = records[self.spec.input_key].astype(np.float32)
    if self.spec.image:
      x = (x / 255.0 - np.float32(self.spec.mean)) / np.float32(self.spec.std)
    else:
      x = x[..., None]  # a 1-D signal becomes (length, channels=1)
    return {"x": x, "label": records["label"].astype(np.int32)}


def augment(batch: dict, rng: np.random.Generator) -> dict:
  """CIFAR-style, per image: reflect-pad 4 and random-crop back, random horizontal flip."""
  x = batch["x"]
  b, h, w = x.shape[:3]
  padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
  offsets = rng.integers(0, 9, size=(b, 2))
  flips = rng.random(b) < 0.5
  out = np.empty_like(x)
  for n, ((i, j), flip) in enumerate(zip(offsets, flips)):
    crop = padded[n, i:i + h, j:j + w]
    out[n] = crop[:, ::-1] if flip else crop
  return {"x": out, "label": batch["label"]}


def train_iterator(config: ml_collections.ConfigDict) -> grain.DatasetIterator:
  """Endless batches; epoch e is shuffled with seed (config.seed + e), so the order is a function
  of (seed, step). The iterator's `get_state()` / `set_state()` go into every checkpoint."""
  cfg = config.dataset
  reader = Reader(cfg, cfg.train_split)
  if len(reader) < config.batch_size:
    raise ConfigError(f"config.batch_size={config.batch_size} exceeds the {len(reader)} examples "
                      f"of {cfg.name}:{cfg.train_split}")
  ds = grain.MapDataset.range(len(reader)).shuffle(seed=config.seed).repeat()
  ds = ds.batch(config.batch_size, drop_remainder=True).map(reader)
  if cfg.augment:
    if not reader.spec.image:
      raise ConfigError(f"config.dataset.augment=True needs an image dataset, not {cfg.name!r}")
    ds = ds.random_map(augment, seed=config.seed)
  read = grain.ReadOptions(num_threads=cfg.num_threads, prefetch_buffer_size=4)
  return iter(ds.to_iter_dataset(read))


def eval_batches(config: ml_collections.ConfigDict) -> Callable[[], Iterator[dict]]:
  """A function that yields the eval split once, in order, in fixed-size batches.

  The last batch is zero-padded to `eval_batch_size` with `mask` marking real examples, so the
  eval step compiles once.
  """
  cfg = config.dataset
  reader = Reader(cfg, cfg.eval_split)
  ds = grain.MapDataset.range(len(reader)).batch(config.eval_batch_size).map(reader)
  size = config.eval_batch_size

  def batches():
    for batch in ds:
      n = len(batch["label"])
      padded = {k: np.concatenate([v, np.zeros((size - n, *v.shape[1:]), v.dtype)])
                for k, v in batch.items()}
      yield {**padded, "mask": np.arange(size) < n}

  return batches
