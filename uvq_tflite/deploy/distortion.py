"""DistortionNet deployed: NHWC patches in, one reassembled NHWC feature map per frame out."""

from __future__ import annotations

import torch
from torch import nn

from uvq_tflite.deploy import ModelSpec, to_nchw, to_nhwc
from uvq_tflite.nets.backbone import DistortionNet

GRID = 3
PATCHES_PER_FRAME = GRID * GRID
PATCH = (360, 640)


def reassemble_4d(patches: torch.Tensor) -> torch.Tensor:
    """NHWC [F*9, h, w, C] -> [F, 3h, 3w, C] using only rank-4 reshapes/permutes.

    Patch f*9 + row*3 + col lands at rows row*h.. and columns col*w.. of frame f.
    """
    n, h, w, c = patches.shape
    frames = n // PATCHES_PER_FRAME
    x = patches.reshape(frames * GRID, GRID, h, w * c)  # (f*3+row, col, y, x*C+c)
    x = x.permute(0, 2, 1, 3)                          # (f*3+row, y, col, x*C+c)
    return x.reshape(frames, GRID * h, GRID * w, c)


class DistortionDeploy(nn.Module):
    """NHWC patches [F*9, 360, 640, 3] -> reassembled NHWC [F, 24, 24, 128].

    With reassemble=False it returns the patches' NHWC features: the same module
    path, so the same tensor names, for one patch (the calibration twin).
    """

    def __init__(self, net: DistortionNet, reassemble: bool = True):
        super().__init__()
        self.net = net
        self.reassemble = reassemble

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        features = to_nhwc(self.net(to_nchw(patches)))
        return reassemble_4d(features) if self.reassemble else features


SPEC = ModelSpec(
    name="distortion",
    network=DistortionNet,
    wrapper=DistortionDeploy,
    twin=lambda net: DistortionDeploy(net, reassemble=False),
    twin_input_shapes=[(1, *PATCH, 3)],
    twin_calls=lambda inputs: [[inputs[0][i:i + 1]] for i in range(len(inputs[0]))],
)
