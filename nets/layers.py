"""What the three families share: compute dtypes and rematerialisation policies chosen by name, and
the one check of a named choice ("unknown X; valid: ...") that models and configs use, and the one
check that a cuDNN kernel can run here.

Precision policy: parameters stay float32; `dtype='bfloat16'` runs the matmuls and convolutions in
bfloat16 (output heads included, but the recurrent and the Transformer classifiers' heads: one tiny
matmul on a pooled vector, kept float32), while norms, softmax, recurrent carries and the loss stay
float32 and the logits are returned as float32 (tests/test_precision.py reads the traced program).
"""
import difflib

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# What the backward pass may keep from the forward pass of a rematerialised block.
REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,  # keep nothing: least memory
    "dots": jax.checkpoint_policies.dots_saveable,  # keep matmul outputs, recompute the rest
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def did_you_mean(name: str, valid) -> str:
  close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
  return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(what: str, value, valid, error: type[Exception] = ValueError) -> None:
  """Raises `error`('unknown WHAT VALUE (did you mean ...?); valid: A, B') unless value in valid."""
  if value not in valid:
    raise error(f"unknown {what} {value!r}{did_you_mean(value, valid)}; "
                f"valid: {', '.join(map(str, valid))}")


def remat(block: type[nn.Module], enabled: bool, policy: str, **kwargs) -> type[nn.Module]:
  """`block`, rematerialised under `policy` when `enabled` (kwargs go to `nn.remat`)."""
  check_choice("remat_policy", policy, sorted(REMAT_POLICIES))
  if not enabled:
    return block
  return nn.remat(block, policy=REMAT_POLICIES[policy], **kwargs)


def cuda_problem() -> str | None:
  """Why a kernel of CUDA's cuDNN cannot run here, or None. ROCm's jax also reports the backend
  'gpu', but its MIOpen is no drop-in: it orders the LSTM's gates differently, for one."""
  backend = jax.default_backend()
  if backend != "gpu":
    return f"needs a CUDA GPU; jax's default backend is {backend!r}"
  if "rocm" in jax.extend.backend.get_backend().platform_version.lower():
    return "needs a CUDA GPU (cuDNN); this GPU runs ROCm"
  return None
