"""PyTorch peers of our experiments for the speed tables: `python -m experiments.peers.X`."""
