"""Our own TFDS builders (generated or shipped data, no download). Importing this package registers
them with TFDS under their snake-case names: mnist1d, adding_problem, copy_memory, python_reference."""
from train.datasets import mnist1d, python_reference, sequence_tasks  # noqa: F401
