"""Config checks that run before anything is built: a user's mistake is one line, never a traceback."""
import difflib

import ml_collections

import nets

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


class ConfigError(ValueError):
  """A mistake in the user's config, data dir or workdir; `python -m train` prints it and exits 2."""


def did_you_mean(name: str, valid) -> str:
  close = difflib.get_close_matches(name, list(valid), n=1)
  return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(where: str, value, valid) -> None:
  if value not in valid:
    raise ConfigError(f"{where}={value!r} is not valid{did_you_mean(str(value), valid)}; "
                      f"valid: {', '.join(map(str, valid))}")


def get(config: ml_collections.ConfigDict, field: str):
  for part in field.split("."):
    config = config[part]
  return config


def check_positive(config: ml_collections.ConfigDict, *fields: str, allow_zero=False) -> None:
  for field in fields:
    value = get(config, field)
    if value < 0 or (value == 0 and not allow_zero):
      raise ConfigError(f"config.{field}={value} must be {'>= 0' if allow_zero else '> 0'}")


def check_fraction(config: ml_collections.ConfigDict, *fields: str) -> None:
  """Each field must lie in [0, 1): rates, momenta and decay coefficients."""
  for field in fields:
    value = get(config, field)
    if not 0 <= value < 1:
      raise ConfigError(f"config.{field}={value} must be in [0, 1)")


def validate(config: ml_collections.ConfigDict, datasets) -> None:
  """Raises ConfigError for the first bad field. `datasets` is the names `train.data` can load."""
  check_positive(config, "batch_size", "eval_batch_size", "num_steps", "log_every", "eval_every",
                 "grad_accum_steps",
                 "checkpoint.every", "checkpoint.keep", "optimizer.lr", "dataset.num_threads",
                 "dataset.seq_len")
  check_positive(config, "optimizer.weight_decay", "optimizer.grad_clip_norm",
                 "optimizer.warmup_steps", "optimizer.min_lr_ratio", "optimizer.step_factor",
                 "checkpoint.every_s", "max_nonfinite_skips", allow_zero=True)
  check_choice("config.nonfinite", config.nonfinite, ("stop", "skip"))
  if config.nonfinite == "skip" and config.max_nonfinite_skips < 1:
    raise ConfigError("config.nonfinite='skip' needs config.max_nonfinite_skips >= 1")
  check_fraction(config, "optimizer.momentum", "optimizer.b1", "optimizer.b2")
  check_choice("config.dataset.name", config.dataset.name.split("/")[0], sorted(datasets))
  check_choice("config.model.name", config.model.name, sorted(nets.MODELS))
  valid_fields = nets.model_fields(nets.MODELS[config.model.name])
  for field in config.model:
    if field != "name" and field not in valid_fields:
      raise ConfigError(f"config.model.{field} is not a field of model {config.model.name!r}"
                        f"{did_you_mean(field, valid_fields)}; valid: {', '.join(valid_fields)}")
  if "dropout" in config.model:
    check_fraction(config, "model.dropout")
  opt = config.optimizer
  check_choice("config.optimizer.name", opt.name, OPTIMIZERS)
  check_choice("config.optimizer.schedule", opt.schedule, SCHEDULES)
  if opt.warmup_steps >= config.num_steps:
    raise ConfigError(f"config.optimizer.warmup_steps={opt.warmup_steps} must be below "
                      f"config.num_steps={config.num_steps}")
  if opt.min_lr_ratio > 1:
    raise ConfigError(f"config.optimizer.min_lr_ratio={opt.min_lr_ratio} must be <= 1")
  warmup_end = opt.warmup_steps / config.num_steps
  if opt.schedule == "step" and not all(warmup_end < b < 1 for b in opt.step_boundaries):
    raise ConfigError(f"config.optimizer.step_boundaries={opt.step_boundaries} must be fractions "
                      f"of num_steps in ({warmup_end:g}, 1): after the warm-up, before the end")
  check_choice("config.checkpoint.best_mode", config.checkpoint.best_mode, ("max", "min"))
