"""Deployment wrappers: what gets converted. NHWC at the boundary, rank <= 4 inside.

One module per network holds its wrapper and its `SPEC`. Modules are imported
on demand, so a pipeline stage for one network never loads another's code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from uvq_tflite.core import registry

if TYPE_CHECKING:  # importing torch costs seconds; stages that never run a network skip it
    import torch
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A network's torch side: its module, its deployment wrapper and its twin. Shapes
    and file names are in the registry (uvq_tflite.core.registry.network)."""

    name: str
    network: type[nn.Module]
    wrapper: type[nn.Module]
    # A smaller float model computing the same named tensors, for calibration and
    # per-layer analysis where the deployed one is too large to keep every tensor
    # of (distortion: one patch instead of nine), and how one call's inputs split
    # into the twin's calls. None: the deployed model itself is used.
    twin: Callable[[nn.Module], nn.Module] | None = None
    twin_input_shapes: list[tuple[int, ...]] | None = None
    twin_calls: Callable[[list], list[list]] | None = None


def spec(name: str) -> ModelSpec:
    """The spec of one of MODELS, importing only that network's modules."""
    return importlib.import_module(registry.network(name).module).SPEC


def to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def to_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)
