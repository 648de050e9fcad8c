"""Training: `python -m train --config experiments/X.py --workdir runs/X`."""
