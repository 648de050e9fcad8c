"""Our own TFDS builders (generated data, no download). Importing this package registers them."""
from train.datasets import mnist1d  # noqa: F401  (registers the builder by its name)
