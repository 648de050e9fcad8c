"""Dataset name -> `tfds.data_source` -> deterministic, checkpointable batches (grain).

Every dataset is a TFDS dataset: our own builders (`train/datasets/`, generated or shipped) and
catalog ones (`mnist`, `fashion_mnist`, `cifar10`, `tiny_shakespeare`) alike. A batch is
`{"x": inputs, "label": targets}`, plus `"weights"` (B, T) for sequence targets.
"""
import collections
import dataclasses
import functools
from collections.abc import Callable, Iterator

import grain
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

import train.datasets  # noqa: F401  (registers our builders with TFDS)
from train.config import ConfigError


def signal_batch(records, info):
  del info
  return {"x": records["x"].astype(np.float32)[..., None],  # (B, L) -> (B, L, channels=1)
          "label": records["label"].astype(np.int32)}


def image_batch(mean, std):
  mean, std = np.float32(mean), np.float32(std)

  def make(records, info):
    del info
    return {"x": (records["image"].astype(np.float32) / 255.0 - mean) / std,
            "label": records["label"].astype(np.int32)}

  return make


def adding_batch(records, info):
  """x_BT2: the values and a 0/1 channel marking the two to add."""
  del info
  values_BT = records["values"]
  marks_BT = np.zeros_like(values_BT)
  np.put_along_axis(marks_BT, records["markers"], 1.0, axis=1)
  return {"x": np.stack([values_BT, marks_BT], -1), "label": records["target"].astype(np.float32)}


def copy_batch(records, info):
  symbols_BS = records["symbols"]
  b, s = symbols_BS.shape
  t = int(info.config_name[1:])  # the builder config: t100 -> T = 100
  x_BL = np.zeros((b, t + 2 * s), np.int32)
  x_BL[:, :s] = symbols_BS
  x_BL[:, s + t - 1] = 9  # "go": reproduce the symbols from here on
  label_BL = np.zeros_like(x_BL)
  label_BL[:, -s:] = symbols_BS
  return {"x": x_BL, "label": label_BL, "weights": np.ones(x_BL.shape, np.float32)}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  task: str  # classify | regress | sequence (see train/losses.py)
  make_batch: Callable | None = None  # (stacked records, tfds info) -> batch; None for text
  keys: tuple[str, ...] = ()  # the features each record contributes
  num_outputs: int = 0  # 0: the label feature's number of classes (or the text's vocabulary)
  vocab_size: int = 0  # token inputs: their number of ids (text: its vocabulary); 0: float inputs
  images: bool = False  # (B, H, W, C) inputs, which dataset.augment may crop and flip


DATASETS = {
    "mnist1d": DatasetSpec("classify", signal_batch, ("x", "label")),
    "mnist": DatasetSpec("classify", image_batch((0.1307,), (0.3081,)), ("image", "label"),
                          images=True),
    "fashion_mnist": DatasetSpec("classify", image_batch((0.2860,), (0.3530,)), ("image", "label"),
                          images=True),
    "cifar10": DatasetSpec("classify", image_batch((0.4914, 0.4822, 0.4465),
                                                   (0.2470, 0.2435, 0.2616)), ("image", "label"),
                           images=True),
    "adding_problem": DatasetSpec("regress", adding_batch, ("values", "markers", "target"), 1),
    "copy_memory": DatasetSpec("sequence", copy_batch, ("symbols",), 10, 10),
    "python_reference": DatasetSpec("sequence"),  # text: cut into windows of dataset.seq_len
    "tiny_shakespeare": DatasetSpec("sequence"),
}


def spec_of(name: str) -> DatasetSpec:
  return DATASETS[name.split("/")[0]]  # "adding_problem/t100" -> its builder's spec


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


@functools.cache
def _text(name: str, split: str, data_dir: str, download: bool) -> str:
  cfg = ml_collections.ConfigDict(dict(name=name, data_dir=data_dir, download=download))
  return load_source(cfg, split)[0]["text"].decode("utf-8")


def vocabulary(cfg: ml_collections.ConfigDict) -> list[str]:
  """A text dataset's characters, from its train split: token i is vocabulary[i]."""
  return sorted(set(_text(cfg.name, cfg.train_split, cfg.data_dir, cfg.download)))


class Reader:
  """Batches by index: gathers records (from memory when cached) and turns them into a batch."""

  def __init__(self, cfg: ml_collections.ConfigDict, split: str):
    self.spec = spec_of(cfg.name)
    if self.spec.make_batch is None:  # text: windows of seq_len + 1 characters, one per record
      chars = vocabulary(cfg)
      lookup = {c: i for i, c in enumerate(chars)}
      text = _text(cfg.name, split, cfg.data_dir, cfg.download)
      ids = np.array([lookup.get(c, 0) for c in text], np.int32)  # unseen chars -> id 0
      n = (len(ids) - 1) // cfg.seq_len
      self.length, self.num_outputs = n, len(chars)
      self.vocab_size = len(chars)
      starts = np.arange(n)[:, None] * cfg.seq_len
      self.cached = {"tokens": ids[starts + np.arange(cfg.seq_len + 1)]}
      return
    self.source = load_source(cfg, split)
    self.info = self.source.dataset_info
    self.length = len(self.source)
    self.num_outputs = self.spec.num_outputs or self.info.features["label"].num_classes
    self.vocab_size = self.spec.vocab_size
    self.cached = self.read_records(np.arange(self.length)) if cfg.cache else None

  def __len__(self) -> int:
    return self.length

  def read_records(self, ids) -> dict[str, np.ndarray]:
    records = [self.source[int(i)] for i in ids]
    return {k: np.stack([np.asarray(r[k]) for r in records]) for k in self.spec.keys}

  def __call__(self, ids) -> dict[str, np.ndarray]:
    records = ({k: v[ids] for k, v in self.cached.items()} if self.cached is not None
               else self.read_records(ids))
    if self.spec.make_batch is None:
      tokens_BL = records["tokens"]
      return {"x": tokens_BL[:, :-1], "label": tokens_BL[:, 1:],
              "weights": np.ones(tokens_BL[:, 1:].shape, np.float32)}
    return self.spec.make_batch(records, self.info)


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


def train_iterator(config: ml_collections.ConfigDict, reader: Reader) -> grain.DatasetIterator:
  """Endless batches; epoch e is shuffled with seed (config.seed + e), so the order is a function
  of (seed, step). The iterator's `get_state()` / `set_state()` go into every checkpoint."""
  if len(reader) < config.batch_size:
    raise ConfigError(f"config.batch_size={config.batch_size} exceeds the {len(reader)} examples "
                      f"of {config.dataset.name}:{config.dataset.train_split}")
  ds = grain.MapDataset.range(len(reader)).shuffle(seed=config.seed).repeat()
  ds = ds.batch(config.batch_size, drop_remainder=True).map(reader)
  if config.dataset.augment:
    if not reader.spec.images:
      raise ConfigError("config.dataset.augment=True needs an image dataset, not "
                        f"{config.dataset.name!r}")
    ds = ds.random_map(augment, seed=config.seed)
  read = grain.ReadOptions(num_threads=config.dataset.num_threads, prefetch_buffer_size=4)
  return iter(ds.to_iter_dataset(read))


def prefetch_to_device(iterator: grain.DatasetIterator, size: int = 2):
  """Yields (batch on the device, the iterator's state just after that batch) while the next
  `size - 1` batches are already being copied; the state is what a checkpoint of that step saves."""
  queue = collections.deque()
  while True:
    while len(queue) < size:
      batch = next(iterator)
      queue.append((jax.device_put(batch), iterator.get_state()))
    yield queue.popleft()


def eval_batches(config: ml_collections.ConfigDict, reader: Reader) -> Callable[[], Iterator[dict]]:
  """A function that yields the eval split once, in order, in fixed-size batches.

  The last batch is zero-padded to `eval_batch_size` with `mask` marking real examples, so the
  eval step compiles once.
  """
  ds = grain.MapDataset.range(len(reader)).batch(config.eval_batch_size).map(reader)
  size = config.eval_batch_size

  def batches():
    for batch in ds:
      n = len(batch["label"])
      padded = {k: np.concatenate([v, np.zeros((size - n, *v.shape[1:]), v.dtype)])
                for k, v in batch.items()}
      yield {**padded, "mask": np.arange(size) < n}

  return batches
