"""The EfficientNet-B0 backbone and the two networks built on it.

The backbone is written once as a config table (as torchvision writes
EfficientNet); DistortionNet and ContentNet both use it. The module nesting
reproduces the published UVQ 1.5 checkpoint keys exactly. Everything here is
NCHW math; layout belongs to `uvq_tflite.deploy`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3


class MBConvConfig(NamedTuple):
    """One MBConv row of the backbone table."""

    expand: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int


STEM_CHANNELS = 32
HEAD_CHANNELS = 128
HEAD_KERNEL = 2

# features.1 .. features.16, in order (ARCHITECTURE.md, "Shared backbone").
MBCONV_TABLE: tuple[MBConvConfig, ...] = (
    MBConvConfig(1, 3, 1, 32, 16),
    MBConvConfig(6, 3, 2, 16, 24),
    MBConvConfig(6, 3, 1, 24, 24),
    MBConvConfig(6, 5, 2, 24, 40),
    MBConvConfig(6, 5, 1, 40, 40),
    MBConvConfig(6, 3, 2, 40, 80),
    MBConvConfig(6, 3, 1, 80, 80),
    MBConvConfig(6, 3, 1, 80, 80),
    MBConvConfig(6, 5, 1, 80, 112),
    MBConvConfig(6, 5, 1, 112, 112),
    MBConvConfig(6, 5, 1, 112, 112),
    MBConvConfig(6, 5, 2, 112, 192),
    MBConvConfig(6, 5, 1, 192, 192),
    MBConvConfig(6, 5, 1, 192, 192),
    MBConvConfig(6, 5, 1, 192, 192),
    MBConvConfig(6, 3, 1, 192, 320),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one spatial axis."""
    total = max((size - 1) // stride * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Module):
    """Conv2d with TensorFlow "same" padding; the weight lives under `.conv`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
                 groups: int = 1, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=0,
                              groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.conv.kernel_size
        sh, sw = self.conv.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return self.conv(x)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1,
            groups: int = 1, act: bool = True) -> nn.Sequential:
    """"Same" conv (`.0`), BatchNorm (`.1`) and optionally SiLU."""
    layers = [SameConv2d(in_ch, out_ch, kernel, stride, groups),
              nn.BatchNorm2d(out_ch, eps=BN_EPS)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gating: global mean -> fc1 -> SiLU -> fc2 -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.fc2(F.silu(self.fc1(s))))
        return x * s


class MBConv(nn.Module):
    """Inverted residual block; its steps live under `.block.N`."""

    def __init__(self, cfg: MBConvConfig):
        super().__init__()
        hidden = cfg.in_channels * cfg.expand
        steps: list[nn.Module] = []
        if cfg.expand != 1:
            steps.append(conv_bn(cfg.in_channels, hidden, 1))
        steps += [
            conv_bn(hidden, hidden, cfg.kernel, cfg.stride, groups=hidden),
            SqueezeExcitation(hidden, max(1, cfg.in_channels // 4)),
            conv_bn(hidden, cfg.out_channels, 1, act=False),
        ]
        self.block = nn.Sequential(*steps)
        self.residual = cfg.stride == 1 and cfg.in_channels == cfg.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def build_features() -> nn.Sequential:
    """The 18-entry `features` Sequential: stem, 16 MBConvs, 2x2 head conv."""
    return nn.Sequential(
        conv_bn(3, STEM_CHANNELS, 3, stride=2),
        *(MBConv(cfg) for cfg in MBCONV_TABLE),
        SameConv2d(MBCONV_TABLE[-1].out_channels, HEAD_CHANNELS, HEAD_KERNEL),
    )


DISTORTION_POOL = (5, 13)


class DistortionNet(nn.Module):
    """Patches [N, 3, 360, 640] -> [N, 128, 8, 8]: backbone, then a (5, 13) max-pool."""

    def __init__(self):
        super().__init__()
        self.features = build_features()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.features(patches), DISTORTION_POOL, stride=1)


class ContentNet(nn.Module):
    """Frames resized to [N, 3, 256, 256] -> [N, 128, 8, 8]: backbone, no pooling head."""

    def __init__(self):
        super().__init__()
        self.features = build_features()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames)
