"""The lecture's claims measured on trained runs or on the models themselves: one module a claim,
each a command (`python -m experiments.analysis.X`) that writes JSON and plots, and, where the
README shows its result, a `readme_blocks()` that `python -m train.tools.reproduce --readme` calls.
"""
