"""Tiny converted models for tests: a clean conv, GATHER_ND, rank 5, a transposed conv."""

from __future__ import annotations

import functools

import torch
from torch import nn


class _NHWCConv(nn.Module):
    """One seeded conv, NHWC in and out, rank 4 throughout."""

    def __init__(self, make_conv):
        super().__init__()
        torch.manual_seed(0)
        self.conv = make_conv()

    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class TinyConv(_NHWCConv):
    """A plain 3x3 conv."""

    def __init__(self):
        super().__init__(lambda: nn.Conv2d(3, 4, 3, padding=1))


class AdvancedIndexing(nn.Module):
    """Indexing with tensors: lowers to GATHER_ND."""

    def forward(self, x):
        return x[:, torch.tensor([0, 2, 1]), torch.tensor([1, 1, 0])]


class RankFive(nn.Module):
    """A 5-D intermediate, like a naive 3x3 patch reassembly."""

    def forward(self, x):
        y = x.reshape(1, 2, 2, 2, 4) * 2.0
        return y.permute(0, 2, 1, 3, 4).reshape(1, 4, 4, 2)


class TinyTransposeConv(_NHWCConv):
    """A strided transposed conv: TRANSPOSE_CONV (ai-edge-quantizer's CONV_2D_TRANSPOSE)."""

    def __init__(self):
        super().__init__(lambda: nn.ConvTranspose2d(8, 16, 3, stride=2))


SAMPLES = {TinyConv: (1, 8, 8, 3), AdvancedIndexing: (1, 3, 3, 4), RankFive: (1, 4, 4, 2),
           TinyTransposeConv: (1, 8, 8, 8)}


@functools.cache
def converted(cls: type[nn.Module]) -> bytes:
    import litert_torch

    return litert_torch.convert(cls().eval(), (torch.zeros(SAMPLES[cls]),)).model_content()
