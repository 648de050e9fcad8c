"""Model registry: `config.model.name` -> a flax.linen Module class.

Add a model by writing a Module and two lines here (its import and its `MODELS` entry);
`config.model.<field>` sets its dataclass fields.
"""
import dataclasses

import flax.linen as nn

from nets.layers import check_choice
from nets.cnn import MLP, ConvNet, ResNet
from nets.recurrent import RecurrentNet
from nets.seq2seq import RNNSeq2Seq, TransformerSeq2Seq
from nets.transformer import TransformerClassifier, TransformerLM

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "convnet": ConvNet,
    "resnet": ResNet,
    "rnn": RecurrentNet,
    "transformer": TransformerClassifier,
    "transformer_lm": TransformerLM,
    "rnn_seq2seq": RNNSeq2Seq,
    "transformer_seq2seq": TransformerSeq2Seq,
}


def model_fields(cls: type[nn.Module]) -> list[str]:
  """The constructor fields a config may set (flax's own `parent` and `name` excluded)."""
  return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


def model_defaults(cls: type[nn.Module]) -> dict:
  """The default of each of `model_fields` that has one (a field without one must be given)."""
  defaults, names = {}, model_fields(cls)
  for f in dataclasses.fields(cls):
    if f.name not in names:
      continue
    if f.default is not dataclasses.MISSING:
      defaults[f.name] = f.default
    elif f.default_factory is not dataclasses.MISSING:
      defaults[f.name] = f.default_factory()
  return defaults


def create_model(name: str, **kwargs) -> nn.Module:
  check_choice("model", name, sorted(MODELS))
  return MODELS[name](**kwargs)
