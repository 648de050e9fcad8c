"""An offline character-level corpus: the Python 3.11 language reference (the text of CPython's
`pydoc_data/topics.py`, 465k characters, PSF license), shipped here as `python_reference.txt.gz`.

Same layout as TFDS's `tiny_shakespeare`: one `text` example per split, split 90/5/5.
"""
import gzip
import os

import tensorflow_datasets as tfds

CORPUS = os.path.join(os.path.dirname(__file__), "python_reference.txt.gz")


class PythonReference(tfds.core.GeneratorBasedBuilder):
  """The Python language reference as plain text, for character-level language models."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, *, file_format="array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)

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
