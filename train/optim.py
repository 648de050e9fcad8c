"""config.optimizer -> an optax GradientTransformation and its learning-rate schedule."""
import jax
import ml_collections
import optax


def make_schedule(opt: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  if opt.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, opt.lr, opt.warmup_steps, num_steps, end_value=opt.lr * opt.min_lr_ratio)
  if opt.schedule == "step":
    decay = optax.piecewise_constant_schedule(
        opt.lr, {int(b * num_steps) - opt.warmup_steps: opt.step_factor
                 for b in opt.step_boundaries})
  else:
    decay = optax.constant_schedule(opt.lr)
  if not opt.warmup_steps:
    return decay
  warmup = optax.linear_schedule(0.0, opt.lr, opt.warmup_steps)
  return optax.join_schedules([warmup, decay], [opt.warmup_steps])


# Name prefixes: biases (the GRU's bias_hn too), and norms' scales and offsets (flax: bias).
NO_DECAY = ("bias", "scale")


def decay_mask(params):
  """Weight decay on kernels and embeddings only. By name, not by being 1-D: an attention
  projection's bias is (num_heads, head_dim), and scanned layers stack every parameter."""
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim > 1 and not str(getattr(path[-1], "key", "")).startswith(NO_DECAY),
      params)


def make_optimizer(opt: ml_collections.ConfigDict, num_steps: int, max_skips: int = 0):
  """Returns (tx, schedule); the schedule is also logged as `lr`. With `max_skips` > 0, an update
  whose gradients hold a NaN/Inf is dropped (optax.apply_if_finite), up to that many in a row."""
  schedule = make_schedule(opt, num_steps)
  chain = []
  if opt.grad_clip_norm:
    chain.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  if opt.name == "adamw":
    chain.append(optax.adamw(schedule, opt.b1, opt.b2, opt.eps,
                             weight_decay=opt.weight_decay, mask=decay_mask))
  else:
    if opt.weight_decay:  # coupled L2: added to the gradient before the update rule
      chain.append(optax.add_decayed_weights(opt.weight_decay, mask=decay_mask))
    if opt.name == "adam":
      chain.append(optax.adam(schedule, opt.b1, opt.b2, opt.eps))
    else:
      momentum = None if opt.name == "sgd" else opt.momentum
      chain.append(optax.sgd(schedule, momentum, nesterov=opt.name == "nesterov"))
  tx = optax.chain(*chain)
  return (optax.apply_if_finite(tx, max_skips) if max_skips else tx), schedule
