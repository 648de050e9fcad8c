"""The fields every experiment has. An experiment file starts from `base_config()` and changes a few.

Every field here is read by `train/`; `train/config.py` checks them all before anything runs.
"""
import dataclasses

import ml_collections

import nets


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 100
  c.eval_batch_size = 1000
  c.num_steps = 8000
  c.log_every = 100  # steps between host syncs for train metrics
  c.eval_every = 1000
  c.nonfinite = "stop"  # stop | skip: on a NaN/Inf loss or gradient norm, stop the run or skip the step
  c.max_nonfinite_skips = 10  # skip: this many skipped steps in a row, and the update is applied
  c.grad_accum_steps = 1  # micro-batches per step, gradients summed: batches larger than memory

  # Devices: a (data, fsdp) mesh over all of them (see train/sharding.py). batch_size is global.
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1  # data-parallel devices; -1: all that fsdp leaves
  c.mesh.fsdp = 1  # devices each matrix of params and optimizer state is split over; 1: replicated
  c.distributed = False  # jax.distributed.initialize(); also when JAX_COORDINATOR_ADDRESS is set

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "mnist1d"
  c.dataset.data_dir = ""  # "" = TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.dataset.download = True  # prepare it if missing (our builders generate; catalog ones download)
  c.dataset.train_split = "train"
  c.dataset.eval_split = "test"
  c.dataset.seq_len = 256  # text datasets: characters per training window
  c.dataset.cache = True  # hold the decoded splits in memory (fine up to a few GB)
  c.dataset.augment = False  # random crop + flip, images only
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
  c.checkpoint.best_metric = "accuracy"  # an eval metric of the task (train/losses.py METRICS)
  c.checkpoint.best_mode = "max"  # max | min
  return c


def model_config(name: str, **overrides) -> ml_collections.ConfigDict:
  """`name` plus every constructor field of that model (its defaults, then `overrides`).

  Listing all fields makes each one settable from the command line and visible in config.json.
  """
  cls = nets.MODELS[name]
  fields = {f: getattr(cls, f) for f in nets.model_fields(cls)}
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; valid: {sorted(fields)}")
  fields.update(overrides)
  return ml_collections.ConfigDict({"name": name, **fields})


@dataclasses.dataclass(frozen=True)
class Expected:
  """One expected result of an experiment (its registry entry; not part of the run's config).

  The runs of this entry are the experiment's config with `overrides`, once per seed; it matches
  when |mean over seeds of the final eval `metric` - value| <= tolerance. An experiment file
  declares `EXPECTED = [Expected(...), ...]` (several entries cover a grid, e.g. cells x lengths;
  `EXPECTED = []` or none: a benchmark, not a reproduction target) and `QUICK`, its reduced form.
  """
  metric: str  # a final eval metric of results.json: accuracy, loss, bits, recall_accuracy
  value: float
  tolerance: float
  seeds: tuple[int, ...] = (0,)
  overrides: dict = dataclasses.field(default_factory=dict)  # config fields: {"model.cell": "gru"}


@dataclasses.dataclass(frozen=True)
class Quick:
  """The reduced form of an experiment (`python -m train.reproduce --quick`): `overrides` (fewer
  steps, ...) applied to every run of `expected`, a loose check that it still learns."""
  overrides: dict
  expected: list[Expected]
