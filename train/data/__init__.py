"""Datasets: one module per family (its TFDS builder, batching and normalisation, registered under
its names), and the pipeline that turns any of them into batches.

Adding a dataset is adding a module here that calls `spec.register` (see README "Extending"):
every module of this package is imported below, which also registers its builders with TFDS.
"""
import importlib
import pkgutil

from train.data.pipeline import (  # noqa: F401
    ROLES, Reader, augment, check_name, check_test_name, data_dir, dataset_version, device_resident,
    eval_batches,
    is_generated, permute_positions, position_order, prefetch_to_device, reader, role_dataset,
    shuffled_batch_ids, train_iterator, vocabulary)
from train.data.spec import DATASETS, DatasetSpec, register, spec_of  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
  if _module.name not in ("pipeline", "spec"):
    importlib.import_module(f"{__name__}.{_module.name}")
