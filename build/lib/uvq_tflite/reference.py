"""Reference UVQ 1.5 semantics, written independently of the deployment wrappers.

Frames are NHWC float32 in [-1, 1] at 1080x1920. Everything here follows
ARCHITECTURE.md literally (explicit patch loops, the reassembly formula) so
that verification never compares a wrapper with itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

GRID = 3
CONTENT_SIZE = 256


def to_model_range(frames_u8: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 in [-1, 1]."""
    return ((frames_u8.astype(np.float32) / 255.0 - 0.5) * 2.0).astype(np.float32)


def split_patches(frames: np.ndarray) -> np.ndarray:
    """[F, H, W, C] -> [F*9, H/3, W/3, C], row-major patch order per frame."""
    n, h, w, _ = frames.shape
    ph, pw = h // GRID, w // GRID
    return np.stack([frames[f, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw]
                     for f in range(n) for r in range(GRID) for c in range(GRID)])


def reassemble_patches(patches: np.ndarray) -> np.ndarray:
    """out[f, row*h + y, col*w + x] = patch[f*9 + row*3 + col][y, x]."""
    n, h, w, ch = patches.shape
    frames = n // (GRID * GRID)
    out = np.empty((frames, GRID * h, GRID * w, ch), patches.dtype)
    for f in range(frames):
        for row in range(GRID):
            for col in range(GRID):
                out[f, row * h:(row + 1) * h, col * w:(col + 1) * w] = \
                    patches[f * GRID * GRID + row * GRID + col]
    return out


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def resize_for_content(frames: np.ndarray) -> np.ndarray:
    """[F, H, W, 3] -> [F, 256, 256, 3], bilinear, align_corners=False, no antialias."""
    resized = F.interpolate(_nchw(frames), size=(CONTENT_SIZE, CONTENT_SIZE),
                            mode="bilinear", align_corners=False, antialias=False)
    return _nhwc(resized)


@torch.no_grad()
def distortion_patch_features(net: torch.nn.Module, patches: np.ndarray) -> np.ndarray:
    """DistortionNet core on NHWC patches -> NHWC [N, 8, 8, 128]."""
    return _nhwc(net(_nchw(patches)))


@torch.no_grad()
def distortion_features(net: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """Whole frames -> reassembled NHWC [F, 24, 24, 128], one patch at a time.

    One patch per call is about twice as fast on CPU as nine: a 360x640 patch's
    activations stay closer to the caches.
    """
    patches = split_patches(frames)
    return reassemble_patches(np.concatenate([
        distortion_patch_features(net, patches[i:i + 1]) for i in range(len(patches))]))


@torch.no_grad()
def content_features(net: torch.nn.Module, content_inputs: np.ndarray) -> np.ndarray:
    """NHWC [F, 256, 256, 3] -> NHWC [F, 8, 8, 128]."""
    return _nhwc(net(_nchw(content_inputs)))


@torch.no_grad()
def aggregate(net: torch.nn.Module, content: np.ndarray,
              distortion: np.ndarray) -> np.ndarray:
    """NHWC feature maps -> scores [F, 1]."""
    return net(_nchw(content), _nchw(distortion)).numpy()
