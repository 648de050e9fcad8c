"""Dataset name -> `tfds.data_source` -> deterministic, checkpointable batches (grain).

Every dataset is a TFDS dataset: our own builders (generated or shipped) and catalog ones alike;
what differs between them is their `DatasetSpec` (train/data/spec.py). A batch is
`{"x": inputs, "label": targets}`, plus `"weights"` (B, T) for sequence targets.
"""
import collections
import concurrent.futures
import functools
import inspect
import itertools
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

import grain
import jax
from absl import logging
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from train import sharding
from nets.layers import check_choice
from train.config import ConfigError
from train.data import shuffle
from train.data.spec import spec_of


ROLES = ("train", "validation", "test")  # trained on; chosen on (best checkpoint); reported
TFDS_HOST = "storage.googleapis.com"  # TFDS's mirror of its catalog, and most catalog URLs' host
PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


def role_dataset(cfg: ml_collections.ConfigDict, role: str) -> ml_collections.ConfigDict:
  """The dataset config that plays `role`: `cfg`, or for test a copy naming cfg.test_name (which
  the config.json of a run older than that field lacks)."""
  if role != "test" or not cfg.get("test_name"):
    return cfg
  return ml_collections.ConfigDict({**cfg.to_dict(), "name": cfg.test_name})


def split(cfg: ml_collections.ConfigDict, role: str) -> str:
  """The TFDS split that plays `role`: config.dataset.<role>_split, or its dataset's own."""
  return cfg[f"{role}_split"] or spec_of(role_dataset(cfg, role).name).splits[ROLES.index(role)]


def reader(cfg: ml_collections.ConfigDict, role: str) -> "Reader":
  """The Reader of the split that plays `role` (of config.dataset.test_name's dataset for test)."""
  return Reader(role_dataset(cfg, role), split(cfg, role))


def check_name(cfg: ml_collections.ConfigDict) -> None:
  """A builder config after the '/' must be one the builder has (adding_problem/t100, ...); so
  must config.dataset.test_name's."""
  for field in ("name", "test_name"):
    base, _, variant = cfg.get(field, "").partition("/")
    if not variant:
      continue
    try:
      variants = sorted(tfds.builder_cls(base).builder_configs)
    except Exception:  # noqa: BLE001  not a registered builder: load_source says so
      continue
    check_choice(f"config.dataset.{field}", f"{base}/{variant.split(':')[0]}",
                 [f"{base}/{v}" for v in variants], ConfigError)


def check_test_name(cfg: ml_collections.ConfigDict, readers: dict) -> None:
  """config.dataset.test_name's inputs and classes must be those the model is trained on."""
  train, test = readers["train"], readers["test"]
  shapes = [spec_of(c.name).input_shape(c) for c in (cfg, role_dataset(cfg, "test"))]
  if shapes[0] != shapes[1] or train.num_outputs != test.num_outputs:
    raise ConfigError(f"config.dataset.test_name={cfg.test_name!r} has inputs {shapes[1][0]} and "
                      f"{test.num_outputs} outputs, but {cfg.name!r} {shapes[0][0]} and "
                      f"{train.num_outputs}")


def load_source(cfg: ml_collections.ConfigDict, split: str):
  """A random-access `tfds.data_source` split; prepares it first when `cfg.download` allows."""
  verbosity = logging.get_verbosity()
  if not cfg.download:  # TFDS warns about every empty version folder it probes; our error says it
    logging.set_verbosity(logging.ERROR)
  else:
    check_network(cfg)
  try:
    return tfds.data_source(cfg.name, split=split, data_dir=cfg.data_dir or None,
                            download=cfg.download)
  except Exception as e:  # TFDS raises assorted types for a missing dataset, split or data dir
    where = data_dir(cfg)
    check_split(cfg, split)
    if not cfg.download:
      raise ConfigError(f"{cfg.name!r} is not prepared in {where} and config.dataset.download="
                        f"False: {how_to_prepare(cfg)}") from e
    raise ConfigError(f"cannot load {cfg.name!r} split {split!r} from {where}: "
                      f"{str(e).strip().splitlines()[0]}") from e
  finally:
    logging.set_verbosity(verbosity)


def check_network(cfg: ml_collections.ConfigDict) -> None:
  """ConfigError at once where a catalog dataset must be downloaded and no name resolves: TFDS
  would retry each file for about 3.5 minutes first. A proxy resolves names itself: not checked."""
  download = inspect.getattr_static(tfds.core.DatasetBuilder, "download_and_prepare")
  # tfds.testing.mock_data replaces it with its own: nothing is downloaded then
  mocked = not getattr(download, "__module__", "").startswith("tensorflow_datasets.core")
  if mocked or is_generated(cfg.name) or any(os.environ.get(v) or os.environ.get(v.upper())
                                             for v in PROXY_VARIABLES):
    return
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # TFDS warns about every empty version folder it probes
  try:
    if tfds.builder(cfg.name, data_dir=cfg.data_dir or None).is_prepared():
      return
  except Exception:  # noqa: BLE001  not a dataset, or no such config: load_source says so
    return
  finally:
    logging.set_verbosity(verbosity)
  try:
    socket.getaddrinfo(TFDS_HOST, 443)
  except socket.gaierror as e:
    raise ConfigError(f"cannot download {cfg.name!r} into {data_dir(cfg)}: TFDS's host "
                      f"{TFDS_HOST} does not resolve here ({e.strerror}); prepare it with "
                      f"{tfds_build(cfg)} on a machine with network, then copy the folder over"
                      ) from None


def data_dir(cfg: ml_collections.ConfigDict) -> str:
  """The data dir TFDS reads: config.dataset.data_dir, else $TFDS_DATA_DIR, else its default."""
  return (cfg.data_dir or os.environ.get("TFDS_DATA_DIR")
          or os.path.expanduser("~/tensorflow_datasets"))


def is_generated(name: str) -> bool:
  """One of our builders (train/data/), which generate their data offline."""
  try:
    return tfds.builder_cls(name.split("/")[0]).__module__.startswith("train.data.")
  except Exception:  # noqa: BLE001  not a registered builder
    return False


def dataset_version(name: str) -> str | None:
  """The version of `name`'s TFDS builder ('dates/l25' -> '1.1.0'): which data a run read."""
  try:
    return str(tfds.builder_cls(name.split("/")[0]).VERSION)
  except Exception:  # noqa: BLE001  not a registered builder
    return None


def how_to_prepare(cfg: ml_collections.ConfigDict) -> str:
  if is_generated(cfg.name):
    return "it is generated offline, so set config.dataset.download=True"
  return (f"prepare it with {tfds_build(cfg)} (on a machine with network, then copy the folder "
          "over) or set config.dataset.download=True")


def tfds_build(cfg: ml_collections.ConfigDict) -> str:
  data_dir = f" --data_dir={cfg.data_dir}" if cfg.data_dir else ""
  return f"`tfds build {cfg.name}{data_dir} --file_format=array_record`"


def check_split(cfg: ml_collections.ConfigDict, split: str) -> None:
  """ConfigError naming the valid splits when the dataset is there but `split` is not one of its."""
  try:
    splits = sorted(tfds.builder(cfg.name, data_dir=cfg.data_dir or None).info.splits)
  except Exception:  # noqa: BLE001  not prepared, or not a dataset: the caller's message
    return
  name = split.split("[")[0].split("+")[0]  # "train[:80%]" -> "train"
  if splits:
    field = next((f"{r}_split" for r in ROLES if cfg.get(f"{r}_split") == split), "split")
    check_choice(f"config.dataset.{field} of {cfg.name!r}", name, splits, ConfigError)


@functools.cache
def _text(name: str, split: str, data_dir: str, download: bool) -> str:
  """A split's examples joined by newlines (tiny_shakespeare has one; lm1b one per sentence)."""
  cfg = ml_collections.ConfigDict(dict(name=name, data_dir=data_dir, download=download))
  source = load_source(cfg, split)
  return "\n".join(source[i]["text"].decode("utf-8") for i in range(len(source)))


def vocabulary(cfg: ml_collections.ConfigDict) -> list[str]:
  """A text dataset's characters, from its train split: token i is vocabulary[i]."""
  return sorted(set(_text(cfg.name, split(cfg, "train"), cfg.data_dir, cfg.download)))


def position_order(cfg: ml_collections.ConfigDict) -> np.ndarray | None:
  """config.dataset.permute_positions's order of the input positions (None: off): position i of
  a permuted input is position order[i] of the original, positions flattened over every axis
  between the batch and the channels. A pure function of the seed and the input shape, so every
  split, batch and resume sees the same order (grain's shuffle, `shuffle.epoch_permutation`, not
  numpy's, whose streams may change between versions)."""
  seed = cfg.get("permute_positions", -1)  # (the config.json of a run older than the field)
  if seed < 0:
    return None
  spec = spec_of(cfg.name)
  if spec.task not in ("classify", "regress") or spec.vocab_size or spec.text:
    what = "token inputs" if spec.vocab_size or spec.text else "per-step targets"
    raise ConfigError(f"config.dataset.permute_positions={seed}: {cfg.name!r} has {what} "
                      f"({spec.task} task); only float inputs with one target each (classify, "
                      "regress) can be permuted")
  shape, _ = spec.input_shape(cfg)
  positions = int(np.prod(shape[:-1]))  # the last axis holds a position's channels
  if positions < 2:
    raise ConfigError(f"config.dataset.permute_positions={seed}: {cfg.name!r} inputs {shape} have "
                      "no positions to permute (they are read as (positions..., channels))")
  return shuffle.epoch_permutation(positions, seed)


def permute_positions(batch: dict, order_P: np.ndarray | None) -> dict:
  """The batch with its inputs x (B, *positions, C) in `order_P` (`position_order`; None: as it
  is); the channels of a position move together, and nothing else changes."""
  if order_P is None:
    return batch
  x = batch["x"]
  x_BPC = x.reshape(x.shape[0], -1, x.shape[-1])  # P: the positions, flattened
  return {**batch, "x": x_BPC[:, order_P].reshape(x.shape)}


class Reader:
  """Batches by index: gathers records (from memory when cached) and turns them into a batch (its
  positions permuted where config.dataset.permute_positions says so: `order`)."""

  def __init__(self, cfg: ml_collections.ConfigDict, split: str):
    self.dataset, self.split, self.spec = cfg.name, split, spec_of(cfg.name)
    self.order = position_order(cfg)  # before any data is read: a bad value touches nothing
    if self.spec.text:  # records are windows of seq_len + 1 characters, cut once, kept in memory
      chars = vocabulary(cfg)
      lookup = {c: i for i, c in enumerate(chars)}
      text = _text(cfg.name, split, cfg.data_dir, cfg.download)
      ids = np.array([lookup.get(c, 0) for c in text], np.int32)  # unseen chars -> id 0
      if len(ids) <= cfg.seq_len:
        raise ConfigError(f"config.dataset.seq_len={cfg.seq_len} is longer than {cfg.name}:{split} "
                          f"({len(ids)} characters)")
      starts = np.arange((len(ids) - 1) // cfg.seq_len)[:, None] * cfg.seq_len
      self.info, self.num_outputs = None, len(chars)
      self.cached = {"tokens": ids[starts + np.arange(cfg.seq_len + 1)]}
      self.length = len(self.cached["tokens"])
      return
    self.source = load_source(cfg, split)
    self.info = self.source.dataset_info
    self.length = len(self.source)
    self.num_outputs = self.spec.num_outputs or self.info.features["label"].num_classes
    self.cached = self.read_records(np.arange(self.length)) if cfg.cache else None

  def __len__(self) -> int:
    return self.length

  def read_records(self, ids) -> dict[str, np.ndarray]:
    records = [self.source[int(i)] for i in ids]
    return {k: np.stack([np.asarray(r[k]) for r in records]) for k in self.spec.keys}

  def __call__(self, ids, permute: bool = True) -> dict[str, np.ndarray]:
    """The batch of examples `ids`; `permute=False`: its positions in their own order (to augment
    an image before its pixels are scrambled)."""
    records = ({k: v[ids] for k, v in self.cached.items()} if self.cached is not None
               else self.read_records(ids))
    batch = self.spec.make_batch(records, self.info)
    return permute_positions(batch, self.order) if permute else batch


def augment(batch: dict, rng: np.random.Generator, rows: slice = slice(None),
            batch_size: int | None = None) -> dict:
  """CIFAR-style, per image: reflect-pad 4 and random-crop back, random horizontal flip. The
  batch holds `rows` of a global batch of `batch_size` (this process's share; default all): the
  draws are the global batch's, so that processes do not repeat each other's crops (grain seeds
  `rng` by batch index only) and a run augments the same whatever its number of processes."""
  x = batch["x"]
  b, h, w = x.shape[:3]
  padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
  offsets = rng.integers(0, 9, size=(batch_size or b, 2))[rows]
  flips = (rng.random(batch_size or b) < 0.5)[rows]
  out = np.empty_like(x)
  for n, ((i, j), flip) in enumerate(zip(offsets, flips)):
    crop = padded[n, i:i + h, j:j + w]
    out[n] = crop[:, ::-1] if flip else crop
  return {"x": out, "label": batch["label"]}


def shuffled_batch_ids(num_records: int, batch_size: int, shuffle_seed: int) -> Callable:
  """Batch b -> the record ids at positions b*B .. (b+1)*B - 1 of an endless stream of epochs,
  epoch e in the order of `grain.MapDataset.range(n).shuffle(shuffle_seed + e)` (what
  `.shuffle(seed).repeat().batch(B)` yields, bit for bit), one vectorised permutation per epoch
  (the per-example grain calls cost as much as a small model's step). The two newest epochs'
  orders are kept (a batch may straddle two); an older one asked for again (grain's reader threads
  run a few batches apart, so with tiny epochs they can be epochs apart) is computed again."""
  orders, lock = {}, threading.Lock()

  def order(epoch: int) -> np.ndarray:
    with lock:
      perm = orders.get(epoch)
      if perm is None:  # a reader thread behind the others may ask for an evicted epoch again
        perm = orders[epoch] = shuffle.epoch_permutation(num_records,
                                                         (shuffle_seed + epoch) % 2**32)
        for old in sorted(orders)[:-2]:
          del orders[old]
      return perm

  def ids(b: int, count: int | None = None) -> np.ndarray:
    """Batch b's ids (B,); with `count`, those of batches b .. b+count-1, (count, B)."""
    epoch_N, index_N = np.divmod(np.arange(b * batch_size, (b + (count or 1)) * batch_size),
                                 num_records)
    out = np.concatenate([order(int(e))[index_N[epoch_N == e]] for e in np.unique(epoch_N)])
    return out if count is None else out.reshape(count, batch_size)

  return ids


def train_iterator(config: ml_collections.ConfigDict, reader: Reader, ids_only: bool = False
                   ) -> "grain.DatasetIterator | BatchIds":
  """Endless batches in an order that is a function of (seed, step): epoch e is shuffled with
  (shuffle_seed + e), and shuffle_seed is hashed from config.seed so that seeds 0 and 1 do not see
  the same epochs shifted by one. Every process draws the same global batches and reads only its
  rows of each. The iterator's `get_state()` / `set_state()` go into every checkpoint; `ids_only`:
  each batch's example ids, for a split on the device (`device_resident`), with the same states
  (`BatchIds`)."""
  if len(reader) < config.batch_size:
    raise ConfigError(f"config.batch_size={config.batch_size} exceeds the {len(reader)} examples "
                      f"of {config.dataset.name}:{split(config.dataset, 'train')}")
  shuffle_seed = int(np.random.SeedSequence(config.seed).generate_state(1)[0])
  rows = sharding.process_rows(config.batch_size)
  batch_ids = shuffled_batch_ids(len(reader), config.batch_size, shuffle_seed)
  if ids_only:  # a split on the device, which is never augmented (device_resident)
    return BatchIds(batch_ids)
  ds = grain.MapDataset.range(sys.maxsize // config.batch_size)
  if not config.dataset.augment:
    ds = ds.map(lambda b: reader(batch_ids(b)[rows]))
  else:  # crops and flips of the image, then (where asked) its pixels permuted
    if not reader.spec.images:
      raise ConfigError("config.dataset.augment=True needs an image dataset, not "
                        f"{config.dataset.name!r}")
    ds = ds.map(lambda b: reader(batch_ids(b)[rows], permute=False))
    ds = ds.random_map(functools.partial(augment, rows=rows, batch_size=config.batch_size),
                       seed=config.seed)
    if reader.order is not None:
      ds = ds.map(lambda batch: permute_positions(batch, reader.order))
  read = grain.ReadOptions(num_threads=config.dataset.num_threads, prefetch_buffer_size=4)
  return iter(ds.to_iter_dataset(read))


_DRAWER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="batch_ids")  # one thread


class BatchIds:
  """What `train_iterator(ids_only=True)` returns: batch b's example ids (int32) for b = 0, 1, ...,
  the same as its grain pipeline would yield, with grain's iterator states ({"next_index":
  batches drawn}, so checkpoints of either resume the other), without grain's per-batch work:
  `with_states` draws CHUNK batches in one vectorised call while a helper thread draws the next
  CHUNK (an epoch's permutation costs milliseconds: a small model's step on a GPU is a fraction
  of one)."""
  CHUNK = 100

  def __init__(self, batch_ids: Callable):
    self.batch_ids, self.next_index = batch_ids, 0

  def get_state(self) -> dict:
    return {"next_index": self.next_index}

  def set_state(self, state: dict) -> None:
    self.next_index = int(state["next_index"])

  def draw(self, first: int) -> np.ndarray:
    return self.batch_ids(first, self.CHUNK).astype(np.int32)

  def with_states(self) -> Iterator[tuple[np.ndarray, dict]]:
    """Endless (a batch's ids, the state just after it), from `next_index` on."""
    ahead = _DRAWER.submit(self.draw, self.next_index)
    while True:
      chunk = ahead.result()
      ahead = _DRAWER.submit(self.draw, self.next_index + self.CHUNK)
      for ids in chunk:
        self.next_index += 1
        yield ids, self.get_state()


# The most of a train split `device_resident` puts on the devices (each holds all of it).
ON_DEVICE_MAX_BYTES = 1 << 30


def device_resident(config: ml_collections.ConfigDict, reader: Reader, mesh) -> dict | None:
  """The whole train split as one batch, replicated on the mesh, when config.dataset.on_device and
  it can be: cached, not augmented (augmentation draws on the host), one process, at most
  ON_DEVICE_MAX_BYTES. Batches are then gathered on the device by their ids, which saves the host
  a gather and a copy per step (about a tenth of a CPU run of the default experiment); their
  values are those of `reader(ids)`, since each spec's make_batch works example by example."""
  if not (config.dataset.on_device and reader.cached is not None and not config.dataset.augment
          and jax.process_count() == 1):
    return None
  split = reader(np.arange(len(reader)))
  if sum(v.nbytes for v in split.values()) > ON_DEVICE_MAX_BYTES:
    return None
  return jax.device_put(split, sharding.replicated(mesh))


@functools.partial(jax.jit, static_argnums=2)
def gather(split: dict, ids, batch_sharding) -> dict:
  """The rows `ids` of a device-resident split, laid out as a global batch."""
  return jax.lax.with_sharding_constraint(jax.tree.map(lambda a: a[ids], split), batch_sharding)


def prefetch_to_device(iterator: "grain.DatasetIterator | BatchIds", batch_sharding,
                       resident=None, size: int = 2, steps: Iterable[int] | None = None):
  """Yields (global batch on the devices, the iterator's state just after that batch) while the
  next `size - 1` batches are already being copied; the state is what a checkpoint of that step
  saves. From a `resident` split, each batch is gathered on the device (an asynchronous call, so
  nothing to queue) by ids drawn BatchIds.CHUNK batches at a time.

  With `steps`, the steps of each call (config.steps_per_call > 1), an item is that many batches
  stacked on a new leading axis (`sharding.stacked`), gathered or copied at once, with the state
  after the last of them; the items end with `steps`."""
  layout = sharding.stacked(batch_sharding) if steps is not None else batch_sharding
  stack = lambda batches: jax.tree.map(lambda *xs: np.stack(xs), *batches)
  if resident is not None:  # `iterator` is a BatchIds (train_iterator(ids_only=True))
    drawn = iterator.with_states()
    if steps is None:
      for ids, state in drawn:
        yield gather(resident, ids, layout), state
      return
    for n in steps:
      ids, states = zip(*itertools.islice(drawn, n))
      yield gather(resident, np.stack(ids), layout), states[-1]
    return
  host = (iter(iterator) if steps is None
          else (stack([next(iterator) for _ in range(n)]) for n in steps))
  queue = collections.deque()
  for batch in host:  # the iterator's state read before it draws the next batch
    queue.append((sharding.to_global(batch, layout), iterator.get_state()))
    if len(queue) == size:
      yield queue.popleft()
  yield from queue


def eval_batches(config: ml_collections.ConfigDict, reader: Reader, batch_sharding=None
                 ) -> Callable[[], Iterator[dict]]:
  """A function that yields one split once, in order, in fixed-size global batches.

  The last batch is padded to `eval_batch_size` (with copies of example 0) and `mask` marks the
  real examples, so the eval step compiles once. Each process reads only its rows."""
  size, rows = config.eval_batch_size, sharding.process_rows(config.eval_batch_size)

  def batches():
    for start in range(0, len(reader), size):
      ids = np.arange(start, start + size)
      mask = ids < len(reader)
      batch = {**reader(np.where(mask, ids, 0)[rows]), "mask": mask[rows]}
      yield sharding.to_global(batch, batch_sharding) if batch_sharding else batch

  return batches
