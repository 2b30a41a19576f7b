"""AggregationNet deployed: NHWC content and distortion features in, scores out."""

from __future__ import annotations

import torch
from torch import nn

from uvq_tflite.deploy import ModelSpec, to_nchw
from uvq_tflite.nets.aggregation import AggregationNet


class AggregationDeploy(nn.Module):
    """NHWC content [F, 8, 8, 128] and distortion [F, 24, 24, 128] -> [F, 1]."""

    def __init__(self, net: AggregationNet):
        super().__init__()
        self.net = net

    def forward(self, content: torch.Tensor, distortion: torch.Tensor) -> torch.Tensor:
        return self.net(to_nchw(content), to_nchw(distortion))


SPEC = ModelSpec(
    name="aggregation",
    network=AggregationNet,
    wrapper=AggregationDeploy,
)
