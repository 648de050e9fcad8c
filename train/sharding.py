"""Devices, meshes and shardings: the same config runs on one CPU, 8 GPUs or a multi-host slice.

The mesh has two axes, `data` and `fsdp`. A batch is split over both (every device sees different
examples); parameters and optimizer state are replicated, or, with `mesh.fsdp > 1`, each matrix is
split along its largest dimension that `fsdp` divides (vectors and scalars stay replicated: they
are small). XLA inserts the collectives; nothing here is hand-written communication.
"""
import os

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from train.config import ConfigError

BATCH_AXES = ("data", "fsdp")


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
  """`jax.distributed.initialize()` when `config.distributed` or the environment asks for it.

  JAX_COORDINATOR_ADDRESS (read by JAX), JAX_NUM_PROCESSES and JAX_PROCESS_ID set a localhost or
  hand-made cluster; SLURM, MPI and TPU slices are detected by JAX itself once config.distributed
  is set."""
  env = os.environ
  if not (config.distributed or "JAX_COORDINATOR_ADDRESS" in env):
    return
  if jax.distributed.is_initialized():
    return
  jax.distributed.initialize(
      num_processes=int(env["JAX_NUM_PROCESSES"]) if "JAX_NUM_PROCESSES" in env else None,
      process_id=int(env["JAX_PROCESS_ID"]) if "JAX_PROCESS_ID" in env else None)


def mesh_shape(cfg: ml_collections.ConfigDict, num_devices: int) -> tuple[int, int]:
  """(data, fsdp) sizes; `data=-1` takes every device that `fsdp` leaves."""
  fsdp = cfg.fsdp
  if fsdp < 1 or num_devices % fsdp:
    raise ConfigError(f"config.mesh.fsdp={fsdp} must divide the {num_devices} devices")
  data = num_devices // fsdp if cfg.data == -1 else cfg.data
  if data < 1 or data * fsdp != num_devices:
    raise ConfigError(f"config.mesh.data={cfg.data} x config.mesh.fsdp={fsdp} must equal the "
                      f"{num_devices} devices (data=-1 fills in the rest)")
  return data, fsdp


def make_mesh(config: ml_collections.ConfigDict) -> Mesh:
  """The mesh over all devices of all processes; checks that the batches split evenly."""
  data, fsdp = mesh_shape(config.mesh, jax.device_count())
  devices, micro = data * fsdp, config.grad_accum_steps
  if config.batch_size % (devices * micro):
    raise ConfigError(f"config.batch_size={config.batch_size} must be divisible by the {devices} "
                      f"devices x config.grad_accum_steps={micro}")
  if config.eval_batch_size % devices:
    raise ConfigError(f"config.eval_batch_size={config.eval_batch_size} must be divisible by the "
                      f"{devices} devices")
  # Auto axes: XLA propagates the shardings through the step (no per-op annotations needed).
  auto = jax.sharding.AxisType.Auto
  return jax.make_mesh((data, fsdp), ("data", "fsdp"), axis_types=(auto, auto))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def stacked(batch_sharding: NamedSharding) -> NamedSharding:
  """The layout of batches stacked on a new leading axis, one per step of a call
  (config.steps_per_call): each batch laid out as alone."""
  return NamedSharding(batch_sharding.mesh, P(None, *batch_sharding.spec))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_dim(shape: tuple[int, ...], fsdp: int) -> int | None:
  """The dimension FSDP splits: the largest one that `fsdp` divides, for arrays of 2+ dims."""
  if fsdp == 1 or len(shape) < 2:
    return None
  return next((d for d in sorted(range(len(shape)), key=lambda d: -shape[d])
               if shape[d] % fsdp == 0), None)


def leaf_sharding(shape: tuple[int, ...], mesh: Mesh) -> NamedSharding:
  d = fsdp_dim(shape, mesh.shape["fsdp"])
  if d is None:
    return replicated(mesh)
  return NamedSharding(mesh, P(*[("fsdp" if i == d else None) for i in range(len(shape))]))


def state_shardings(abstract_state, mesh: Mesh):
  """A sharding for every leaf of the (abstract) train state."""
  return jax.tree.map(lambda a: leaf_sharding(np.shape(a), mesh), abstract_state)


def with_shardings(abstract_state, shardings):
  """ShapeDtypeStructs that carry their sharding: what orbax restores onto (any mesh shape)."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract_state, shardings)


def process_rows(global_batch_size: int) -> slice:
  """The rows of each global batch that this process reads and feeds to its devices."""
  per_process = global_batch_size // jax.process_count()
  start = jax.process_index() * per_process
  return slice(start, start + per_process)


def to_global(local_batch: dict, sharding: NamedSharding) -> dict:
  """This process's rows -> one global array per feature, laid out over the mesh."""
  if jax.process_count() == 1:  # one transfer call for all the features
    return jax.device_put(local_batch, sharding)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def agree(*decisions: bool) -> tuple[bool, ...]:
  """Each decision, true if any process took it (a collective: all processes must call it)."""
  from jax.experimental import multihost_utils  # noqa: PLC0415
  gathered = multihost_utils.process_allgather(np.array(decisions, np.bool_))
  return tuple(bool(d) for d in np.asarray(gathered).reshape(-1, len(decisions)).any(axis=0))


def is_main_process() -> bool:
  """Process 0 writes logs, plots and results; checkpoints are written by all together."""
  return jax.process_index() == 0
