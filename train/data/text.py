"""Character-level text: next-character prediction on windows of `dataset.seq_len` characters.

`python_reference` is an offline corpus, the Python 3.11 language reference (the text of CPython's
`pydoc_data/topics.py`, 465k characters, PSF license), shipped here as `python_reference.txt.gz`,
in the layout of TFDS's `tiny_shakespeare`: one `text` example per split, split 90/5/5.
`tiny_shakespeare` and `lm1b` (sentences joined by newlines) are TFDS catalog datasets (a download);
lm1b has no validation split, so its last 1% of train is one.
"""
import gzip
import os

import numpy as np
import tensorflow_datasets as tfds

from train.data.spec import DatasetSpec, OfflineBuilder, register

CORPUS = os.path.join(os.path.dirname(__file__), "python_reference.txt.gz")


class PythonReference(OfflineBuilder):
  """The Python language reference as plain text, for character-level language models."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
        homepage="https://docs.python.org/3.11/reference/",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # shipped with the code
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
      text = f.read()
    a, b = int(len(text) * 0.9), int(len(text) * 0.95)
    return {"train": self._generate_examples(text[:a]),
            "validation": self._generate_examples(text[a:b]),
            "test": self._generate_examples(text[b:])}

  def _generate_examples(self, text):
    yield 0, {"text": text}


def text_batch(records, info):
  """Next-character prediction on a window: x = tokens[:-1], label = tokens[1:]."""
  del info
  tokens_BL = records["tokens"]
  return {"x": tokens_BL[:, :-1], "label": tokens_BL[:, 1:],
          "weights": np.ones(tokens_BL[:, 1:].shape, np.float32)}


def window(cfg):
  return (cfg.seq_len,), np.int32


register("python_reference", DatasetSpec("sequence", text_batch, window, text=True))
register("tiny_shakespeare", DatasetSpec("sequence", text_batch, window, text=True))
register("lm1b", DatasetSpec("sequence", text_batch, window, text=True,
                             splits=("train[:99%]", "train[99%:]", "test")))
