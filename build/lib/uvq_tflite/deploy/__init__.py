"""Deployment wrappers: what gets converted. NHWC at the boundary, rank <= 4 inside.

One module per network holds its wrapper and its `SPEC`. Modules are imported
on demand, so a pipeline stage for one network never loads another's code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # importing torch costs seconds; stages that never run a network skip it
    import torch
    from torch import nn

MODELS = ("distortion", "content", "aggregation")
PRECISIONS = ("float32", "int8", "full_int8")  # of the .tflite files
SCORE_PRECISIONS = ("pytorch", *PRECISIONS)  # what `uvq-tflite score` compares


@dataclass(frozen=True)
class ModelSpec:
    """A network, its deployment wrapper and its NHWC I/O shapes."""

    name: str
    network: type[nn.Module]
    wrapper: type[nn.Module]
    input_shapes: Callable[[int], list[tuple[int, ...]]]  # frames per call -> shapes
    output_shape: Callable[[int], tuple[int, ...]]
    # A smaller float model computing the same named tensors, for calibration and
    # per-layer analysis where the deployed one is too large to keep every tensor
    # of (distortion: one patch instead of nine), and how one call's inputs split
    # into the twin's calls. None: the deployed model itself is used.
    twin: Callable[[nn.Module], nn.Module] | None = None
    twin_input_shapes: list[tuple[int, ...]] | None = None
    twin_calls: Callable[[list], list[list]] | None = None

    @property
    def file_stem(self) -> str:
        return f"{self.name}_net"

    def frames_per_call(self, inputs: list[list[int]],
                        outputs: list[list[int]] | None = None) -> int:
        """Frames per call that these NHWC shapes are built for; 0 if they fit none."""
        try:
            frames = inputs[0][0] // self.input_shapes(1)[0][0]
        except (TypeError, IndexError, KeyError):
            return 0
        if frames < 1 or inputs != [list(s) for s in self.input_shapes(frames)]:
            return 0
        if outputs is not None and outputs != [list(self.output_shape(frames))]:
            return 0
        return frames

    def tflite_name(self, precision: str) -> str:
        """The seed's file names: distortion_net.tflite, distortion_net_int8.tflite, ..."""
        suffix = "" if precision == "float32" else f"_{precision}"
        return f"{self.file_stem}{suffix}.tflite"


def spec(name: str) -> ModelSpec:
    """The spec of one of MODELS."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return importlib.import_module(f"uvq_tflite.deploy.{name}").SPEC


def to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)
