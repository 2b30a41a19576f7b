"""AggregationNet: content and distortion feature maps -> a quality score in (1, 5)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

CHANNELS = 256  # 128 content + 128 distortion
GRID = 4
LN_EPS = 1e-3


class AggregationNet(nn.Module):
    """Content [N, 128, 8, 8] and distortion [N, 128, 24, 24] -> scores [N, 1]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(CHANNELS, CHANNELS, 1)
        self.ln1 = nn.LayerNorm([CHANNELS, GRID, GRID], eps=LN_EPS)
        self.dropout = nn.Dropout()
        self.linear1 = nn.Linear(CHANNELS, 1)

    def forward(self, content: torch.Tensor, distortion: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.adaptive_avg_pool2d(content, GRID),
                       F.adaptive_avg_pool2d(distortion, GRID)], dim=1)
        x = F.relu(self.ln1(self.conv1(x)))
        x = self.dropout(torch.flatten(F.max_pool2d(x, GRID), 1))
        return 2 * torch.tanh(self.linear1(x)) + 3
