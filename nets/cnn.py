"""Feed-forward and convolutional classifiers: MLP, ConvNet (1-D and 2-D), CIFAR-style ResNet.

Every model is called as `model.apply(variables, x, train=...)` and returns logits `(B, num_outputs)`.
Inputs are channels-last: `(B, L, C)` for signals, `(B, H, W, C)` for images. `dtype='bfloat16'`
runs dense layers and convolutions in bfloat16; norms and the logits stay float32.
"""
import functools
from collections.abc import Sequence
from typing import Callable, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from nets.layers import DTYPES, check_choice, remat

ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu, "gelu": nn.gelu, "tanh": jnp.tanh, "silu": nn.silu, "elu": nn.elu,
}


def activation(name: str) -> Callable:
  check_choice("activation", name, sorted(ACTIVATIONS))
  return ACTIVATIONS[name]


def per_block(value: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
  """An int applies to every block; a sequence gives one value per block."""
  if isinstance(value, int):
    return (value,) * n
  if len(value) != n:
    raise ValueError(f"{what} has {len(value)} entries for {n} conv blocks")
  return tuple(value)


class MLP(nn.Module):
  """Flatten, then Dense -> activation -> dropout per hidden layer, then a linear head.

  With `hidden=()` this is multinomial logistic regression.
  """
  num_outputs: int = 10
  hidden: Sequence[int] = (100, 100)
  activation: str = "relu"
  dropout: float = 0.0
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    check_choice("dtype", self.dtype, sorted(DTYPES))
    act = activation(self.activation)
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = act(nn.Dense(width, dtype=DTYPES[self.dtype])(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, dtype=DTYPES[self.dtype])(x).astype(jnp.float32)


class ConvNet(nn.Module):
  """Conv blocks (conv -> norm -> activation -> pool), then flatten and an MLP head.

  The number of spatial dims (1 or 2) follows the input rank. `kernel_size`, `strides` and
  `padding` take one int for every block or one per block; `padding` may also be 'SAME'/'VALID'
  or 'CIRCULAR' (wraps around: no border for the kernels to see). `global_pool` ('avg' or 'max')
  pools each channel over all positions instead of flattening, so the head sees what was found,
  not where: a fully convolutional net (but zero padding shows the kernels the borders, and from
  them where: experiments/shapes_position.py). Without conv blocks (`features=()`) this is the
  MLP. Each block's activation map is sown as intermediates `block{i}` (`apply(...,
  mutable=["intermediates"])`), for plotting feature maps.
  """
  num_outputs: int = 10
  features: Sequence[int] = (25, 25, 25)
  kernel_size: int | Sequence[int] = 5
  strides: int | Sequence[int] = 1
  padding: str | int | Sequence[int] = "SAME"
  zero_allowed: ClassVar[tuple[str, ...]] = ("padding",)  # may be 0 (train/config.py)
  pool: str = "none"  # max | avg | none
  pool_size: int = 2
  global_pool: str = "none"  # avg | max | none (flatten)
  norm: str = "none"  # batch | layer | none
  activation: str = "relu"
  hidden: Sequence[int] = ()
  dropout: float = 0.0
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if x.ndim not in (3, 4):
      raise ValueError(f"ConvNet takes (B, L, C) or (B, H, W, C) inputs, got shape {x.shape}")
    act = activation(self.activation)
    n, nd = len(self.features), x.ndim - 2
    kernels = per_block(self.kernel_size, n, "kernel_size")
    strides = per_block(self.strides, n, "strides")
    paddings = (self.padding,) * n if isinstance(self.padding, str) else per_block(
        self.padding, n, "padding")
    for i, (feat, k, s, p) in enumerate(zip(self.features, kernels, strides, paddings)):
      pad = p if isinstance(p, str) else [(p, p)] * nd
      # The norm supplies the shift, so the conv's bias would be redundant.
      x = nn.Conv(feat, (k,) * nd, (s,) * nd, padding=pad, use_bias=self.norm == "none",
                  dtype=DTYPES[self.dtype])(x)
      x = normalize(x, self.norm, train)
      x = act(x)
      self.sow("intermediates", f"block{i}", x)
      if self.pool == "max":
        x = nn.max_pool(x, (self.pool_size,) * nd, (self.pool_size,) * nd)
      elif self.pool == "avg":
        x = nn.avg_pool(x, (self.pool_size,) * nd, (self.pool_size,) * nd)
      else:
        check_choice("pool", self.pool, ["avg", "max", "none"])
      if 0 in x.shape[1:-1]:
        raise ValueError(f"block {i} shrinks the input to {x.shape[1:-1]} positions: fewer "
                         "blocks, or smaller kernel_size, strides or pooling")
    positions = tuple(range(1, x.ndim - 1))
    if self.global_pool == "avg":
      x = x.mean(axis=positions)
    elif self.global_pool == "max":
      x = x.max(axis=positions)
    else:
      check_choice("global_pool", self.global_pool, ["avg", "max", "none"])
    return MLP(self.num_outputs, self.hidden, self.activation, self.dropout, self.dtype)(
        x, train=train)


def normalize(x, norm: str, train: bool):
  if norm == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=jnp.float32)(x)
  if norm == "layer":
    return nn.LayerNorm(dtype=jnp.float32)(x)
  check_choice("norm", norm, ["batch", "layer", "none"])
  return x


class ResidualBlock(nn.Module):
  """He et al. (2016) basic block: two 3x3 convs with BatchNorm, projection shortcut when needed."""
  features: int
  strides: int = 1
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(nn.Conv, use_bias=False, dtype=DTYPES[self.dtype])
    bn = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                           dtype=jnp.float32)
    y = conv(self.features, (3, 3), self.strides, padding=1)(x)
    y = nn.relu(bn()(y))
    y = conv(self.features, (3, 3), padding=1)(y)
    # Zero-init the last norm's scale so every block starts as the identity (Goyal et al. 2017).
    y = bn(scale_init=nn.initializers.zeros)(y)
    if x.shape != y.shape:
      x = conv(self.features, (1, 1), self.strides, name="proj")(x)
      x = bn(name="proj_bn")(x)
    return nn.relu(x + y)


RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class ResNet(nn.Module):
  """CIFAR-style ResNet-18/34: a 3x3 stem without max-pool, four stages, global average pool.

  `remat` recomputes each block's activations in the backward pass, keeping what `remat_policy`
  says (`nets.layers.REMAT_POLICIES`)."""
  num_outputs: int = 10
  depth: int = 18
  width: int = 64
  dtype: str = "float32"
  remat: bool = False
  remat_policy: str = "full"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    check_choice("ResNet depth", self.depth, sorted(RESNET_STAGES))
    check_choice("dtype", self.dtype, sorted(DTYPES))
    block = remat(ResidualBlock, self.remat, self.remat_policy, static_argnums=(2,))
    x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, dtype=DTYPES[self.dtype])(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=jnp.float32)(x))
    for stage, num_blocks in enumerate(RESNET_STAGES[self.depth]):
      for i in range(num_blocks):
        strides = 2 if stage > 0 and i == 0 else 1
        x = block(self.width * 2**stage, strides, self.dtype, name=f"ResidualBlock_{stage}_{i}")(
            x, train)
    x = x.mean(axis=tuple(range(1, x.ndim - 1)))
    return nn.Dense(self.num_outputs, dtype=DTYPES[self.dtype])(x).astype(jnp.float32)
