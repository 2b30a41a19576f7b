"""UVQ 1.5 PyTorch checkpoints -> float32 and INT8 TFLite, verified."""

__version__ = "0.1.0"
