"""UVQ 1.5 networks as NCHW PyTorch math, keyed like the published checkpoints."""
