"""Deterministic demo checkpoints in the published key layout.

The pipeline's embedded default: seeded weights, byte-identical on every
machine. Convolutions are He-normal; each BatchNorm's running variance is set,
layer by layer, to the power of four nearest the variance of its input on the
project's synthetic video frames, so activations keep a natural range through
all 18 backbone entries. (Exact statistics would vary with the CPU's float
rounding; a power of four does not.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from uvq_tflite import reference, synthetic
from uvq_tflite.checkpoints import state_dict_bytes
from uvq_tflite.core.registry import network
from uvq_tflite.deploy import spec

CALIBRATION_FRAMES = 4  # one of each synthetic distortion


def _initial(key: str, like: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    leaf = key.rsplit(".", 1)[-1]
    if like.dtype == torch.int64:  # num_batches_tracked
        return torch.zeros_like(like)
    if leaf in ("bias", "running_mean"):
        return torch.zeros_like(like)
    if leaf == "running_var" or like.ndim not in (2, 4):  # BN/LayerNorm scales
        return torch.ones_like(like)
    std = math.sqrt(2.0 / math.prod(like.shape[1:]))
    return torch.from_numpy((rng.standard_normal(like.shape) * std).astype(np.float32))


def _calibration_batch(model: str, seed: int) -> torch.Tensor:
    """NCHW network inputs from synthetic frames: centre patches or resized frames."""
    frames = reference.to_model_range(synthetic.video_frames(CALIBRATION_FRAMES, seed))
    if model == "distortion":
        centre = reference.GRID * reference.GRID // 2
        batch = reference.split_patches(frames)[centre::reference.GRID * reference.GRID]
    else:
        batch = reference.resize_for_content(frames)
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def _calibrate_batchnorm(net: nn.Module, batch: torch.Tensor) -> None:
    def set_variance(bn: nn.BatchNorm2d, args: tuple[torch.Tensor]) -> None:
        variance = float(args[0].double().var())
        bn.running_var.fill_(4.0 ** round(math.log(max(variance, 1e-12), 4)))

    hooks = [m.register_forward_pre_hook(set_variance)
             for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        net.features(batch)
    for hook in hooks:
        hook.remove()


def demo_state_dict(model: str) -> dict[str, torch.Tensor]:
    """Seeded weights for `model`, with exactly the published keys, shapes and dtypes."""
    rng = np.random.default_rng(network(model).demo_seed)
    net = spec(model).network().eval()
    net.load_state_dict({k: _initial(k, v, rng) for k, v in net.state_dict().items()})
    if hasattr(net, "features"):
        _calibrate_batchnorm(net, _calibration_batch(model, network(model).demo_seed))
    return net.state_dict()


def demo_checkpoint_bytes(model: str) -> bytes:
    """The demo checkpoint file's bytes."""
    return state_dict_bytes(demo_state_dict(model))
