"""What the pipeline needs to know of a dataset, and the registry that maps names to it.

Each module of `train/data/` (one dataset family: its TFDS builder, batching and normalisation)
calls `register` for every dataset name it serves; `train/data/__init__.py` imports them all.
"""
import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow_datasets as tfds

from nets.layers import did_you_mean
from train import losses


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  task: str  # classify | regress | sequence | seq2seq (see train/losses.py)
  make_batch: Callable  # (stacked records, tfds info) -> {"x", "label", ...}
  input_shape: Callable  # dataset config -> (shape of one model input, its numpy dtype)
  keys: tuple[str, ...] = ()  # the features each record contributes
  num_outputs: int = 0  # 0: the label feature's number of classes (text: its vocabulary)
  vocab_size: int = 0  # token inputs: their number of ids (text: its vocabulary); 0: float inputs
  images: bool = False  # (B, H, W, C) inputs, which dataset.augment may crop and flip
  text: bool = False  # `text` examples, joined and cut into windows of dataset.seq_len
  extra_metrics: tuple[str, ...] = ()  # beyond the task's own (train/losses.py METRICS)
  # The splits a run trains on, selects on (validation) and reports (test), when the config
  # leaves them "": the source's own, or a fixed slice of train where it has no validation split.
  splits: tuple[str, str, str] = ("train", "validation", "test")
  # What a model that learned nothing scores (a uniform guess, or predicting the mean), which no
  # expected result's band may hold alone (tests/test_reproduce.py): {metric: value, or a function
  # of the run's config}, beyond `chance_of`'s defaults.
  chance: dict[str, float | Callable] = dataclasses.field(default_factory=dict)

  @property
  def metrics(self) -> tuple[str, ...]:
    return losses.METRICS[self.task] + self.extra_metrics

  def chance_of(self, metric: str, config) -> float | None:
    """The chance level of `metric` in a run of `config`: `chance`'s, else a uniform guess among
    the model's outputs for a classify task's accuracy (balanced classes: 1 / num_outputs) and
    among its vocabulary for bits (log2 vocab_size); None where unknown."""
    level = self.chance.get(metric)
    if callable(level):
      return level(config)
    if level is not None:
      return level
    if metric == "accuracy" and self.task == "classify":
      return 1 / config.model.num_outputs
    if metric == "bits":
      return float(np.log2(config.model.vocab_size))
    return None


DATASETS: dict[str, DatasetSpec] = {}


def register(name: str, spec: DatasetSpec) -> None:
  """`spec` for the TFDS builder `name`, which must exist (else validation passed and the run
  failed at load): TFDS names a builder after its class in snake_case."""
  if name in DATASETS:
    raise ValueError(f"dataset {name!r} is registered twice")
  builders = tfds.list_builders(with_community_datasets=False)
  if name not in builders:
    raise ValueError(f"register({name!r}): TFDS has no builder {name!r}"
                     f"{did_you_mean(name, builders)}; it names a builder after its class in "
                     "snake_case (class SineWaves: 'sine_waves')")
  DATASETS[name] = spec


def spec_of(name: str) -> DatasetSpec:
  return DATASETS[name.split("/")[0]]  # "adding_problem/t100" -> its builder's spec


def fixed_shape(shape: tuple[int, ...], dtype=np.float32) -> Callable:
  return lambda cfg: (shape, dtype)


class OfflineBuilder(tfds.core.GeneratorBasedBuilder):
  """Base of our builders: array_record files (what `tfds.data_source` reads, written without
  TensorFlow), and messages that say the data is generated here, not downloaded."""

  def __init__(self, *, file_format="array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _log_download_bytes(self) -> None:  # TFDS's "Downloading and preparing dataset ..."
    print(f"Generating {self.name} offline in {self.data_dir} (nothing is downloaded)...")

  def _log_download_done(self) -> None:
    print(f"Generated {self.name} in {self.data_dir}.")


def variant_length(name: str) -> int:
  """The length a builder config names: 't100' or 'adding_problem/t100' -> 100, 'dates/l50:1.0.0'
  -> 50."""
  return int(name.split("/")[-1].split(":")[0][1:])


class LengthBuilder(OfflineBuilder):
  """A generated task whose builder configs are lengths (`t100`, `l50`: `self.length`). Each split
  is an independent draw, `_generate_examples(count, seed=[length, k])` with k = 0 for train,
  2 for validation, 1 for test (validation came after the other two)."""
  SPLIT_SIZES: tuple[int, int, int]  # train, validation, test

  @property
  def length(self) -> int:
    return variant_length(self.builder_config.name)

  def _split_generators(self, dl_manager):
    del dl_manager  # generated, nothing to download
    (train, validation, test), n = self.SPLIT_SIZES, self.length
    return {"train": self._generate_examples(train, seed=[n, 0]),
            "validation": self._generate_examples(validation, seed=[n, 2]),
            "test": self._generate_examples(test, seed=[n, 1])}
