"""ContentNet deployed: NHWC 256x256 frames in, NHWC feature maps out."""

from __future__ import annotations

import torch
from torch import nn

from uvq_tflite.deploy import ModelSpec, to_nchw, to_nhwc
from uvq_tflite.nets.backbone import ContentNet


class ContentDeploy(nn.Module):
    """NHWC [F, 256, 256, 3] -> NHWC [F, 8, 8, 128]."""

    def __init__(self, net: ContentNet):
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return to_nhwc(self.net(to_nchw(frames)))


SPEC = ModelSpec(
    name="content",
    network=ContentNet,
    wrapper=ContentDeploy,
)
