import os
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.conftest import load_config
from train import data
from train.config import ConfigError
from train.data import pipeline


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def train_iter(config):
  return data.train_iterator(config, data.reader(config.dataset, "train"))


def eval_iter(config):
  return data.eval_batches(config, data.reader(config.dataset, "test"))()


def test_mnist1d_builder_has_the_paper_sizes(data_dir):
  builder = tfds.builder("mnist1d", data_dir=data_dir)
  assert builder.info.splits["train"].num_examples == 4000
  assert builder.info.splits["test"].num_examples == 1000
  source = tfds.data_source("mnist1d", split="test", data_dir=data_dir, download=False)
  assert source[0]["x"].shape == (40,) and source[0]["x"].dtype == np.float32


def test_batches_are_a_function_of_seed_and_step(tiny_config):
  config = tiny_config(batch_size=1000)
  a, b = take(train_iter(config), 6), take(train_iter(config), 6)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["x"], y["x"])
  assert a[0]["x"].shape == (1000, 40, 1) and a[0]["label"].dtype == np.int32
  # 4 batches are one epoch: each epoch holds every example once, in a new order.
  first = np.concatenate([bt["label"] for bt in a[:4]])
  second = np.concatenate([bt["label"] for bt in a[4:]] + [bt["label"] for bt in take(train_iter(config), 8)[6:]])
  assert np.bincount(first).tolist() == np.bincount(second).tolist()
  assert not np.array_equal(a[0]["x"], a[4]["x"][:1000])
  other = take(train_iter(tiny_config(batch_size=1000, seed=1)), 1)[0]
  assert not np.array_equal(a[0]["x"], other["x"])


def test_iterator_state_restores_the_position(tiny_config):
  config = tiny_config(batch_size=64)
  it = train_iter(config)
  take(it, 70)  # past the first epoch
  state = it.get_state()
  expected = take(it, 3)
  fresh = train_iter(config)
  fresh.set_state(state)
  for x, y in zip(expected, take(fresh, 3)):
    np.testing.assert_array_equal(x["x"], y["x"])


def test_a_device_resident_split_gives_the_host_pipelines_batches_and_states(tiny_config):
  """data.device_resident: the same batches (gathered on the device by id) and iterator states,
  across an epoch boundary, as the host path; off where the split is not cached."""
  import jax

  from train import sharding
  config = tiny_config(batch_size=1000)  # 4 batches an epoch
  reader = data.reader(config.dataset, "train")
  mesh = sharding.make_mesh(config)
  batch_sharding = sharding.batch_sharding(mesh)
  resident = data.device_resident(config, reader, mesh)
  assert resident is not None and resident["x"].shape == (4000, 40, 1)
  on_device = data.prefetch_to_device(data.train_iterator(config, reader, ids_only=True),
                                      batch_sharding, resident)
  from_host = data.prefetch_to_device(data.train_iterator(config, reader), batch_sharding)
  for (a, state_a), (b, state_b) in zip(take(on_device, 6), take(from_host, 6)):
    assert state_a == state_b and a.keys() == b.keys()
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))
  assert data.device_resident(tiny_config(**{"dataset.cache": False}),
                              data.reader(tiny_config(**{"dataset.cache": False}).dataset,
                                          "train"), mesh) is None
  assert data.device_resident(tiny_config(**{"dataset.on_device": False}), reader, mesh) is None


@pytest.mark.slow
def test_a_run_from_a_device_resident_split_is_the_run_from_host_batches(tiny_config, tmp_path):
  from tests.kill_harness import assert_same_run
  from train.loop import train_and_evaluate
  for on_device in (True, False):
    train_and_evaluate(tiny_config(**{"dataset.on_device": on_device}),
                       str(tmp_path / f"{on_device}"))
  assert_same_run(str(tmp_path / "True"), str(tmp_path / "False"))


def test_cache_and_streaming_give_the_same_batches(tiny_config):
  cached = take(train_iter(tiny_config(batch_size=32)), 2)
  streamed = take(train_iter(tiny_config(batch_size=32, **{"dataset.cache": False})), 2)
  for x, y in zip(cached, streamed):
    np.testing.assert_array_equal(x["x"], y["x"])


def test_eval_batches_cover_the_split_once_with_a_mask(tiny_config):
  batches = list(eval_iter(tiny_config(eval_batch_size=300)))
  assert [b["x"].shape[0] for b in batches] == [300] * 4
  assert sum(b["mask"].sum() for b in batches) == 1000
  assert not batches[-1]["mask"][100:].any()


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_catalog_datasets_load_by_name(name, shape, tmp_path):
  """The real TFDS path, with TFDS's mock data (this machine cannot download)."""
  config = load_config("cifar10_resnet18" if name == "cifar10" else "mnist_cnn")
  config.dataset.data_dir = str(tmp_path)
  config.batch_size = 8
  with tfds.testing.mock_data(num_examples=20):
    batch = next(train_iter(config))
    eval_batch = next(eval_iter(config))
  assert batch["x"].shape == (8, *shape) and batch["x"].dtype == np.float32
  assert eval_batch["x"].shape == (config.eval_batch_size, *shape)
  assert abs(float(batch["x"].mean())) < 3  # scaled and normalised, not raw 0..255


@pytest.mark.parametrize("name, examples", [
    ("tiny_shakespeare", ["First Citizen:\nBefore we proceed any further, hear me speak.\n" * 3]),
    ("lm1b", ["The cat sat on the mat .", "Stocks rose 3 % on Tuesday .", "It rained ."]),
])
def test_catalog_text_datasets_load_by_name_when_a_data_dir_has_them(name, examples, tmp_path):
  """One text (tiny_shakespeare) or one sentence per example (lm1b): joined by newlines."""
  config = load_config("chars_lstm")
  config.dataset.update(name=name, data_dir=str(tmp_path), seq_len=8)
  records = [{"text": t.encode()} for t in examples]
  with tfds.testing.mock_data(num_examples=len(records), as_data_source_fn=lambda *a, **kw: records):
    reader = data.Reader(config.dataset, "train")
    batch = reader(np.array([0, 1]))
  text = "\n".join(examples)
  chars = sorted(set(text))
  assert reader.num_outputs == len(chars)
  assert "".join(chars[i] for i in batch["x"][0]) == text[:8]
  assert "".join(chars[i] for i in batch["label"][1]) == text[9:17]


def test_augment_keeps_shape_and_changes_pixels():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
  out = data.augment({"x": x, "label": np.zeros(16, np.int32)}, np.random.default_rng(1))["x"]
  assert out.shape == x.shape and out.dtype == x.dtype and not np.array_equal(out, x)


def test_augment_draws_for_the_global_batch_whatever_the_processes():
  """Two processes' halves, each augmented with the same rng (grain seeds it by batch index), are
  the one process's batch: not each other's crops (as they were) nor another run's."""
  x = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype(np.float32)
  label = np.zeros(16, np.int32)
  whole = data.augment({"x": x, "label": label}, np.random.default_rng(1))["x"]
  halves = [data.augment({"x": x[rows], "label": label[rows]}, np.random.default_rng(1), rows,
                         16)["x"] for rows in (slice(0, 8), slice(8, 16))]
  np.testing.assert_array_equal(np.concatenate(halves), whole)


@pytest.mark.parametrize("experiment, how", [
    ("mnist_cnn", "prepare it with `tfds build mnist --data_dir={} --file_format=array_record` (on "
                  "a machine with network, then copy the folder over) or set "
                  "config.dataset.download=True"),
    ("mnist1d_cnn", "it is generated offline, so set config.dataset.download=True"),
])
def test_missing_dataset_says_how_to_prepare_it(tmp_path, experiment, how):
  config = load_config(experiment)
  config.dataset.data_dir = str(tmp_path)
  config.dataset.download = False
  with pytest.raises(ConfigError) as e:
    train_iter(config)
  assert str(e.value) == (f"{config.dataset.name!r} is not prepared in {tmp_path} and "
                          f"config.dataset.download=False: {how.format(tmp_path)}")
  assert os.listdir(tmp_path) == []


def test_download_without_network_fails_at_once(tmp_path, monkeypatch):
  """TFDS retries every file for about 3.5 minutes where no name resolves; we say so first."""
  def no_dns(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

  def tfds_load(*args, **kwargs):
    raise RuntimeError("TFDS tried to download")

  monkeypatch.setattr(socket, "getaddrinfo", no_dns)
  monkeypatch.setattr(tfds, "data_source", tfds_load)
  for name in pipeline.PROXY_VARIABLES:
    monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(name.upper(), raising=False)
  config = load_config("mnist_cnn")
  config.dataset.update(data_dir=str(tmp_path), download=True)
  with pytest.raises(ConfigError) as e:
    train_iter(config)
  assert str(e.value) == (
      f"cannot download 'mnist' into {tmp_path}: TFDS's host storage.googleapis.com does not "
      f"resolve here (Name or service not known); prepare it with `tfds build mnist --data_dir="
      f"{tmp_path} --file_format=array_record` on a machine with network, then copy the folder over")
  assert os.listdir(tmp_path) == []
  monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")  # resolves names itself
  with pytest.raises(ConfigError, match="^cannot load 'mnist' split 'train.*TFDS tried to download"):
    train_iter(config)


def test_adding_problem_batches(tmp_path):
  config = load_config("mnist1d_cnn")
  config.dataset.update(name="adding_problem/t10", data_dir=str(tmp_path))
  config.batch_size = 2000
  batch = next(train_iter(config))
  x_BT2, y_B = batch["x"], batch["label"]
  assert x_BT2.shape == (2000, 10, 2) and y_B.dtype == np.float32
  marks_BT = x_BT2[..., 1]
  assert (marks_BT[:, :5].sum(1) == 1).all() and (marks_BT[:, 5:].sum(1) == 1).all()
  np.testing.assert_allclose(y_B, (x_BT2[..., 0] * marks_BT).sum(1), rtol=1e-6)
  assert abs(np.mean((y_B - 1.0) ** 2) - 1 / 6) < 0.02  # the trivial baseline's MSE


def test_copy_memory_batches(tmp_path):
  config = load_config("mnist1d_cnn")
  config.dataset.update(name="copy_memory/t10", data_dir=str(tmp_path))
  config.batch_size = 4
  batch = next(train_iter(config))
  x, y = batch["x"], batch["label"]
  assert x.shape == y.shape == batch["weights"].shape == (4, 30)
  np.testing.assert_array_equal(y[:, -10:], x[:, :10])
  assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
  assert (x[:, 10:] == np.where(np.arange(20) == 9, 9, 0)).all()  # blanks, "go" at 10 + T - 1
  assert (y[:, :20] == 0).all()


def test_text_windows_and_vocabulary(tmp_path):
  config = load_config("mnist1d_cnn")
  config.dataset.update(name="python_reference", data_dir=str(tmp_path),
                        seq_len=32)
  chars = data.vocabulary(config.dataset)
  reader = data.Reader(config.dataset, "train")
  assert reader.num_outputs == len(chars) > 60
  batch = reader(np.array([0, 5]))
  assert batch["x"].shape == batch["label"].shape == (2, 32)
  np.testing.assert_array_equal(batch["x"][:, 1:], batch["label"][:, :-1])  # next-char targets
  assert "".join(chars[i] for i in reader(np.array([0]))["x"][0]).startswith('The "assert"')
  assert len(reader) == (int(465049 * 0.9) - 1) // 32


def grain_order(n: int, seed: int) -> list[int]:
  from grain._src.python.experimental.index_shuffle.python import index_shuffle_module
  return [index_shuffle_module.index_shuffle(i, max_index=n - 1, seed=seed, rounds=4)
          for i in range(n)]


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 5), (3, 7), (37, 0), (100, 1), (4000, 12345),
                                     (1000, 2**32 - 1), (20000, 8), (2**16, 3), (2**17 + 1, 3),
                                     (70001, 99)])
def test_epoch_permutation_is_grains_index_shuffle(n, seed):
  np.testing.assert_array_equal(data.shuffle.epoch_permutation(n, seed), grain_order(n, seed))


def test_epoch_permutation_is_one_where_grains_is_not():
  """n = 4^8 + 1: grain's cipher domain [0, 4^8) leaves index n - 1 out (it repeats another)."""
  n = 4**8 + 1
  assert len(set(grain_order(n, 3))) == n - 1
  np.testing.assert_array_equal(np.sort(data.shuffle.epoch_permutation(n, 3)), np.arange(n))


def test_shuffled_batches_are_grains_shuffle_repeat_batch():
  """Batches straddling epochs included: the order of every run from before the vectorised
  shuffle is kept (and their checkpoints' iterator positions mean the same batches)."""
  import grain
  n, size, seed = 250, 60, 7  # 250 / 60: most epochs end inside a batch
  grain_batches = grain.MapDataset.range(n).shuffle(seed=seed).repeat().batch(size)
  ids = data.shuffled_batch_ids(n, size, seed)
  for b in range(20):  # almost 5 epochs
    np.testing.assert_array_equal(ids(b), grain_batches[b])


def test_batch_ids_of_an_evicted_epoch_are_computed_again():
  """grain's reader threads may ask for batches out of order; with one batch an epoch, an older
  epoch than the two kept is asked for (it raised KeyError) and must give the same ids."""
  from train.data.pipeline import shuffled_batch_ids

  fresh = lambda b: shuffled_batch_ids(8, 8, 3)(b)
  ids = shuffled_batch_ids(8, 8, 3)
  for b in (5, 6, 7, 4, 7, 0):
    np.testing.assert_array_equal(ids(b), fresh(b))


def test_batch_ids_are_the_grain_pipelines_ids_and_states_across_chunks_and_resumes():
  """data.BatchIds (the device-resident split's ids, drawn 100 batches at a time) against
  the grain pipeline it replaced: the same ids and iterator states over 250 batches (3 chunks,
  epochs of 7 batches that do not divide a chunk), and a resume mid-chunk from a state either
  wrote continues with the same batches."""
  import grain

  from train.data import pipeline

  batch_ids = data.shuffled_batch_ids(100, 14, shuffle_seed=3)
  reference = iter(grain.MapDataset.range(10**9).map(
      lambda b: batch_ids(b).astype(np.int32)).to_iter_dataset())
  expected = []
  for _ in range(250):
    expected.append((next(reference), reference.get_state()))
  import jax

  replicated = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  resident = {"x": np.arange(100, dtype=np.int32)}  # row i holds i: the gathered batch is its ids
  batches = pipeline.prefetch_to_device(pipeline.BatchIds(batch_ids), replicated, resident)
  for (batch, state), (ids, grain_state) in zip(take(batches, 250), expected):
    np.testing.assert_array_equal(np.asarray(batch["x"]), ids)
    assert state == grain_state and batch["x"].dtype == ids.dtype
  for start in (37, 100, 137):
    ids_iter = pipeline.BatchIds(batch_ids)
    ids_iter.set_state(expected[start - 1][1])  # as a checkpoint of step `start` saved it
    for (batch, state), (ids, grain_state) in zip(
        take(pipeline.prefetch_to_device(ids_iter, replicated, resident), 20), expected[start:]):
      np.testing.assert_array_equal(np.asarray(batch["x"]), ids)
      assert state == grain_state


def permuted(tiny_config, seed=0, **overrides):
  return tiny_config(**{"dataset.permute_positions": seed, **overrides})


def test_permuted_positions_are_one_order_for_every_split_batch_and_resume(tiny_config):
  """config.dataset.permute_positions: each of the 40 steps once, in one order for every example
  of every split and batch (the channels with their step), and a checkpointed iterator resumes
  with the same batches; another seed, another order."""
  from train import sharding
  config, ordered = permuted(tiny_config, batch_size=1000), tiny_config(batch_size=1000)
  order = data.position_order(config.dataset)
  assert sorted(order.tolist()) == list(range(40)) and (order != np.arange(40)).any()
  assert (order != data.position_order(permuted(tiny_config, 1).dataset)).any()
  for role in data.ROLES:  # (streamed: only these ids are read)
    ids = np.arange(0, 1000, 7)
    got, want = (data.reader(streamed(c).dataset, role)(ids) for c in (config, ordered))
    np.testing.assert_array_equal(got["x"], want["x"][:, order])
    np.testing.assert_array_equal(got["label"], want["label"])
  reader, ordered_reader = (data.reader(c.dataset, "train") for c in (config, ordered))
  it = data.train_iterator(config, reader)
  for got, want in zip(take(it, 6), take(data.train_iterator(ordered, ordered_reader), 6)):
    np.testing.assert_array_equal(got["x"], want["x"][:, order])  # 4 batches an epoch
  state, expected = it.get_state(), take(it, 3)
  fresh = data.train_iterator(config, reader)
  fresh.set_state(state)
  for x, y in zip(expected, take(fresh, 3)):
    np.testing.assert_array_equal(x["x"], y["x"])
  resident = data.device_resident(config, reader, sharding.make_mesh(config))  # the same there
  np.testing.assert_array_equal(np.asarray(resident["x"]), reader(np.arange(len(reader)))["x"])


def streamed(config):
  """A copy of `config` that reads only the records asked for (not the whole split)."""
  config = config.copy_and_resolve_references()
  config.dataset.cache = False
  return config


def test_positions_are_not_permuted_by_default():
  """-1, off: a batch is its spec's make_batch of the records, as before the field."""
  from train.config import base_config
  assert base_config().dataset.permute_positions == -1
  assert data.position_order(base_config().dataset) is None
  batch = {"x": np.arange(6.0).reshape(1, 3, 2), "label": np.zeros(1, np.int32)}
  assert data.permute_positions(batch, None) is batch


def test_permuted_data_is_bit_identical_when_off(tiny_config):
  """Every existing config (the field at -1) reads the very batches it read before."""
  reader = data.reader(tiny_config().dataset, "train")
  ids = np.arange(50)
  want = reader.spec.make_batch({k: v[ids] for k, v in reader.cached.items()}, reader.info)
  got = reader(ids)
  assert got.keys() == want.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k])
    assert got[k].dtype == want[k].dtype


def test_images_are_permuted_by_pixel_with_their_channels():
  """An image's H x W pixels are the positions (one order over both axes); a pixel's channels
  stay together and in their order."""
  x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
  order = data.shuffle.epoch_permutation(20, 0)
  out = data.permute_positions({"x": x, "label": np.zeros(2)}, order)["x"]
  assert out.shape == x.shape and out.dtype == x.dtype
  for i, j in enumerate(order):
    np.testing.assert_array_equal(out[:, i // 5, i % 5], x[:, j // 5, j % 5])


@pytest.mark.parametrize("overrides, message", [
    ({"dataset.permute_positions": -2},
     "config.dataset.permute_positions=-2 must be -1 (off) or a seed >= 0"),
    ({"dataset.permute_positions": 0.5},
     "config.dataset.permute_positions=0.5 must be -1 (off) or a seed >= 0"),
    ({"dataset.name": "copy_memory/t10", "dataset.permute_positions": 0},
     ("config.dataset.permute_positions=0: 'copy_memory/t10' has token inputs (sequence task); "
      "only float inputs with one target each (classify, regress) can be permuted")),
    ({"dataset.name": "reversal/l10", "dataset.permute_positions": 3},
     ("config.dataset.permute_positions=3: 'reversal/l10' has token inputs (seq2seq task); "
      "only float inputs with one target each (classify, regress) can be permuted")),
])
def test_a_bad_permutation_is_one_line_before_any_data_is_read(tiny_config, tmp_path, overrides,
                                                              message):
  from train.config import validate
  config = tiny_config(**{"dataset.data_dir": str(tmp_path), "dataset.download": False})
  with config.ignore_type():
    config.update_from_flattened_dict(overrides)
  with pytest.raises(ConfigError) as e:
    validate(config, data.DATASETS)
    data.reader(config.dataset, "train")
  assert str(e.value) == message
  assert os.listdir(tmp_path) == []
