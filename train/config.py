"""The one config schema: `base_config()` (every field `train/` reads, with its default),
`model_config()` (a model's fields), and `validate()`, which runs before anything is built so that
a user's mistake is one line, never a traceback. An experiment file starts from `base_config()`
and changes a few fields."""
import ast
import sys

import ml_collections

import nets
from nets.layers import DTYPES, check_choice, did_you_mean

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


class ConfigError(ValueError):
  """A mistake in the user's config, data dir or workdir; `python -m train` prints it and exits 2."""


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 100
  c.eval_batch_size = 1000
  c.num_steps = 8000
  c.log_every = 100  # steps between host syncs for train metrics
  c.eval_every = 1000  # steps between evaluations on the validation split
  c.nonfinite = "stop"  # stop | skip: on a NaN/Inf loss or gradient norm, stop the run or skip the step
  c.max_nonfinite_skips = 10  # skip: this many skipped steps in a row, and the update is applied
  c.grad_accum_steps = 1  # micro-batches per step, gradients summed: batches larger than memory
  # Train steps per jitted call (a lax.scan over them): the host dispatches once per call, for
  # steps shorter than its own per-step work (a small model on a GPU). A call ends at each step
  # that logs, evaluates or saves. Not bit for bit the results of 1 (XLA compiles the scanned step
  # on its own), but a run and its resumes agree exactly for a given value.
  c.steps_per_call = 1
  # A finished run's workdir: start from the parameters (and BatchNorm statistics) of its latest
  # checkpoint, with a fresh optimizer, schedule and step count. Ignored once this run has a
  # checkpoint of its own (a resume).
  c.init_from = ""

  # Devices: a (data, fsdp) mesh over all of them (see train/sharding.py). batch_size is global.
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1  # data-parallel devices; -1: all that fsdp leaves
  c.mesh.fsdp = 1  # devices each matrix of params and optimizer state is split over; 1: replicated
  c.distributed = False  # jax.distributed.initialize(); also when JAX_COORDINATOR_ADDRESS is set

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "mnist1d"
  c.dataset.data_dir = ""  # "" = TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.dataset.download = True  # prepare it if missing (our builders generate; catalog ones download)
  # "" = the dataset's own (train/data/: the source's split, or a fixed slice of train).
  c.dataset.train_split = ""
  c.dataset.validation_split = ""  # evaluated every eval_every steps; picks the best checkpoint
  c.dataset.test_split = ""  # evaluated at the end only (last and best checkpoint); never chosen on
  # Another dataset whose test split is reported ("" = dataset.name), with the same inputs and
  # classes: train on one distribution, test on a shifted one (shapes/top -> shapes/bottom).
  # results.json's splits then name it ("shapes/bottom:test").
  c.dataset.test_name = ""
  c.dataset.seq_len = 256  # text datasets: characters per training window
  c.dataset.cache = True  # hold the decoded splits in memory (fine up to a few GB)
  # The cached train split on the devices, batches gathered there, where it fits (up to 1 GiB,
  # not augmented, one process: data.device_resident); the same batches either way.
  c.dataset.on_device = True
  c.dataset.augment = False  # random crop + flip, images only
  # >= 0: the inputs' positions (MNIST-1D's 40 steps; an image's H x W pixels, each with its
  # channels) in a fixed random order, this seed's, the same for every example and split: what a
  # dense net never knew, which inputs are neighbours, hidden from a CNN too. -1: off.
  c.dataset.permute_positions = -1
  c.dataset.num_threads = 2  # host threads reading and preprocessing batches

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"  # sgd | momentum | nesterov | adam | adamw
  c.optimizer.lr = 1e-2
  c.optimizer.momentum = 0.9  # momentum, nesterov
  c.optimizer.b1 = 0.9  # adam, adamw
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.weight_decay = 0.0  # decoupled for adamw, L2 otherwise; never on biases or norms
  c.optimizer.grad_clip_norm = 0.0  # 0 = no clipping
  c.optimizer.schedule = "constant"  # constant | cosine | step
  c.optimizer.warmup_steps = 0
  c.optimizer.min_lr_ratio = 0.0  # cosine: final lr = lr * min_lr_ratio
  c.optimizer.step_boundaries = (0.5, 0.75)  # step: fractions of num_steps where lr drops
  c.optimizer.step_factor = 0.1  # step: lr multiplier at each boundary

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every = 1000
  c.checkpoint.every_s = 0.0  # also save every this many seconds of training (no eval); 0 = off
  c.checkpoint.keep = 2  # the latest N, plus the best one by best_metric
  c.checkpoint.best_metric = "accuracy"  # a validation metric of the task (train/losses.py)
  c.checkpoint.best_mode = "max"  # max | min; must agree with the metric (accuracy: max; loss: min)
  return c


# The direction in which each metric improves; best_mode must agree with it.
METRIC_MODES = {"accuracy": "max", "loss": "min", "bits": "min", "exact_match": "max"}


def model_config(name: str, **overrides) -> ml_collections.ConfigDict:
  """`name` plus every constructor field of that model (its defaults, then `overrides`).

  Listing all fields makes each one settable from the command line and visible in config.json.
  """
  cls = nets.MODELS[name]
  names = nets.model_fields(cls)
  unknown = set(overrides) - set(names)
  if unknown:
    raise ConfigError(f"{cls.__name__} has no fields {sorted(unknown)}; valid: {sorted(names)}")
  fields = {**nets.model_defaults(cls), **overrides}
  missing = [f for f in names if f not in fields]
  if missing:
    raise ConfigError(f"{cls.__name__} has no default for {', '.join(missing)}: give "
                      f"{'it' if len(missing) == 1 else 'them'}, model_config({name!r}, "
                      f"{missing[0]}=...)")
  return ml_collections.ConfigDict({"name": name, **{f: fields[f] for f in names}})


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


def check_schema(config) -> None:
  """A config file's get_config() must return a ConfigDict holding every field of base_config()
  (start from it): a plain dict or a missing field would otherwise fail deep in the run."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() returned a {type(config).__name__}, not an "
                      "ml_collections.ConfigDict; start from train.config.base_config()")
  missing = [f for f in flat(base_config().to_dict()) if not has_field(config, f)]
  if missing:
    more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
    raise ConfigError(f"the config lacks the fields {', '.join(missing[:3])}{more}; start from "
                      "train.config.base_config()")


def flat(d: dict, prefix: str = "") -> dict:
  """A nested dict (a config's to_dict() or JSON) as {"optimizer.lr": value, ...}."""
  out = {}
  for k, v in d.items():
    out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
  return out


def has_field(config, field: str) -> bool:
  for part in field.split("."):
    if not isinstance(config, ml_collections.ConfigDict) or part not in config:
      return False
    config = config[part]
  return True


def check_model_sizes(model: ml_collections.ConfigDict) -> None:
  """Every integer of a model field (a size, a count, a kernel) is > 0, or >= 0 in the fields
  the model class lists in `zero_allowed`, where 0 means "derived" or "none" (the Transformer's
  mlp_dim: 4 x features): a zero-width layer would otherwise fail at init with a shape traceback."""
  zero_allowed = getattr(nets.MODELS.get(model.get("name")), "zero_allowed", ())
  for field, value in model.items():
    ints = [v for v in (value if isinstance(value, (tuple, list)) else [value])
            if isinstance(v, int) and not isinstance(v, bool)]
    if any(v < 0 or (v == 0 and field not in zero_allowed) for v in ints):
      bound = ">= 0" if field in zero_allowed else "> 0"
      raise ConfigError(f"config.model.{field}={value} must hold sizes {bound}")


def validate(config: ml_collections.ConfigDict, datasets) -> None:
  """Raises ConfigError for the first bad field. `datasets` is the names `train.data` can load."""
  check_schema(config)
  check_positive(config, "batch_size", "eval_batch_size", "num_steps", "log_every", "eval_every",
                 "grad_accum_steps", "steps_per_call",
                 "checkpoint.every", "checkpoint.keep", "optimizer.lr", "optimizer.eps",
                 "dataset.num_threads", "dataset.seq_len")
  check_positive(config, "seed", allow_zero=True)
  check_positive(config, "optimizer.weight_decay", "optimizer.grad_clip_norm",
                 "optimizer.warmup_steps", "optimizer.min_lr_ratio", "optimizer.step_factor",
                 "checkpoint.every_s", "max_nonfinite_skips", allow_zero=True)
  check_choice("config.nonfinite", config.nonfinite, ("stop", "skip"), ConfigError)
  if config.nonfinite == "skip" and config.max_nonfinite_skips < 1:
    raise ConfigError("config.nonfinite='skip' needs config.max_nonfinite_skips >= 1")
  check_fraction(config, "optimizer.momentum", "optimizer.b1", "optimizer.b2")
  permute = config.dataset.permute_positions
  if not isinstance(permute, int) or isinstance(permute, bool) or permute < -1:
    raise ConfigError(f"config.dataset.permute_positions={permute!r} must be -1 (off) or a seed "
                      ">= 0")
  for field in ("name", "test_name"):
    if field == "name" or config.dataset[field]:
      check_choice(f"config.dataset.{field}", config.dataset[field].split("/")[0], sorted(datasets),
                   ConfigError)
  check_choice("config.model.name", config.model.name, sorted(nets.MODELS), ConfigError)
  valid_fields = nets.model_fields(nets.MODELS[config.model.name])
  for field in config.model:
    if field != "name":
      check_choice(f"config.model field (model {config.model.name!r})", field, valid_fields,
                   ConfigError)
  for field in ("dropout", "attention_dropout"):
    if field in config.model:
      check_fraction(config, f"model.{field}")
  if "dtype" in config.model:
    check_choice("config.model.dtype", config.model.dtype, sorted(DTYPES), ConfigError)
  check_model_sizes(config.model)
  opt = config.optimizer
  check_choice("config.optimizer.name", opt.name, OPTIMIZERS, ConfigError)
  check_choice("config.optimizer.schedule", opt.schedule, SCHEDULES, ConfigError)
  if opt.warmup_steps >= config.num_steps:
    raise ConfigError(f"config.optimizer.warmup_steps={opt.warmup_steps} must be below "
                      f"config.num_steps={config.num_steps}")
  if opt.min_lr_ratio > 1:
    raise ConfigError(f"config.optimizer.min_lr_ratio={opt.min_lr_ratio} must be <= 1")
  warmup_end = opt.warmup_steps / config.num_steps
  if opt.schedule == "step" and not all(warmup_end < b < 1 for b in opt.step_boundaries):
    raise ConfigError(f"config.optimizer.step_boundaries={opt.step_boundaries} must be fractions "
                      f"of num_steps in ({warmup_end:g}, 1): after the warm-up, before the end")
  ckpt = config.checkpoint
  check_choice("config.checkpoint.best_mode", ckpt.best_mode, ("max", "min"), ConfigError)
  natural = METRIC_MODES.get(ckpt.best_metric)
  if natural and ckpt.best_mode != natural:
    raise ConfigError(f"config.checkpoint.best_metric={ckpt.best_metric!r} improves by going "
                      f"{'up' if natural == 'max' else 'down'}, but config.checkpoint.best_mode="
                      f"{ckpt.best_mode!r} would keep the worst checkpoint as the best; set "
                      f"config.checkpoint.best_mode={natural!r}")


# Command-line errors: one line, exit status 2 (train/__main__.py, train/tools/bench.py) ----------

def one_line(e: Exception) -> str:
  """config_flags puts the repr() of a multi-line message in some errors: decode it, one line."""
  message = str(e)
  try:
    message = str(ast.literal_eval(message))
  except (ValueError, SyntaxError):
    pass
  return " ".join(message.split()) or type(e).__name__


def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def parse_flags(argv):
  """absl's flags parser, with a bad flag, override or config file as one line and exit 2."""
  from absl import flags  # noqa: PLC0415
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001  bad flags, overrides or config files: all the user's
    fail(unknown_field(argv, loaded_config(argv)) or config_file_error(e) or
         f"{type(e).__name__ if isinstance(e, SyntaxError) else 'bad flags'}: {one_line(e)}")


def config_file_error(e: Exception) -> str | None:
  """The message of a ConfigError that the config file's get_config() raised (model_config's),
  which absl passes on as a ConfigError holding the traceback, inside its own error."""
  found = None
  while e is not None:
    if isinstance(e, ConfigError):
      found = e
    e = e.__cause__ or e.__context__
  return None if found is None else one_line(found)


def loaded_config(argv):
  """The --config file's `get_config()`, or None (absl has not loaded it when an override fails)."""
  import importlib.util  # noqa: PLC0415

  paths = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
  paths += [b for a, b in zip(argv, argv[1:]) if a == "--config"]
  try:
    path, _, arg = paths[-1].partition(":")
    spec = importlib.util.spec_from_file_location("_config_for_errors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except Exception:  # noqa: BLE001  no file, or one that fails: absl's own message then
    return None
  return config if isinstance(config, ml_collections.ConfigDict) else None


def missing_field(config: ml_collections.ConfigDict, key: str) -> str | None:
  """Why `config` has no field `key` ('optimizer.lr'): its first missing part, with a close name
  where there is one; None where it has the field."""
  node, parts = config, key.split(".")
  for depth, name in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      path = ".".join(parts[:depth + 1])
      siblings = ([".".join([*parts[:depth], k]) for k in node]
                  if isinstance(node, ml_collections.ConfigDict) else [])
      return f"the config has no field {path!r}{did_you_mean(path, siblings)}"
    node = node[name]
  return None


def unknown_field(argv, config) -> str | None:
  """absl names an override of a field the config lacks by its last part only ("'lrr' Did you
  mean "lr" ...?"): the whole flag instead, found in `config` (the loaded config file)."""
  if config is None:
    return None
  for arg in argv:
    flag = arg.split("=", 1)[0]
    if flag.startswith("--config.") and (problem := missing_field(config, flag[len("--config."):])):
      return f"{flag}: {problem}"
  return None
