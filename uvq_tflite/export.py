"""PyTorch deployment wrapper -> float32 TFLite flatbuffer, via litert-torch."""

from __future__ import annotations

import contextlib
import sys

import torch
from torch import nn

from uvq_tflite.deploy import spec


def export_float32(model: str, net: nn.Module, frames: int = 1) -> bytes:
    """Convert the deployment wrapper of `net` to a float32 flatbuffer."""
    import litert_torch

    model_spec = spec(model)
    wrapper = model_spec.wrapper(net).eval()
    sample = tuple(torch.zeros(shape) for shape in model_spec.input_shapes(frames))
    # litert-torch reports progress on stdout; keep stdout for results.
    with contextlib.redirect_stdout(sys.stderr):
        return litert_torch.convert(wrapper, sample).model_content()
