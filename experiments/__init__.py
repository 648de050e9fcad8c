"""Experiment configs: one file an experiment, each with `get_config()` and its command."""
