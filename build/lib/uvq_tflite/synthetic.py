"""Seeded synthetic inputs that look like video: structure plus common distortions.

Frames are built from smooth gradients, hard-edged shapes and periodic
textures, then degraded by one of blur, noise or blocking (or left clean).
Everything derives from a numpy Generator, so a seed gives the same bytes on
every machine.
"""

from __future__ import annotations

import numpy as np

HEIGHT, WIDTH = 1080, 1920
DISTORTIONS = ("clean", "blur", "noise", "blocking")


def _scene(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    y /= HEIGHT
    x /= WIDTH
    img = np.empty((HEIGHT, WIDTH, 3), np.float32)
    for c in range(3):  # a smooth background gradient per channel
        a, b, d = rng.uniform(-0.5, 0.5, 3)
        img[..., c] = 0.5 + a * x + b * y + d * x * y
    for _ in range(int(rng.integers(4, 9))):  # flat shapes with hard edges
        color = rng.uniform(0, 1, 3).astype(np.float32)
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        if rng.random() < 0.5:
            mask = (y - cy) ** 2 + ((x - cx) * WIDTH / HEIGHT) ** 2 < r ** 2
        else:
            mask = (abs(y - cy) < r) & (abs(x - cx) < r * rng.uniform(0.5, 2))
        img[mask] = color
    for _ in range(2):  # periodic textures
        fy, fx = rng.uniform(5, 80, 2)
        amp = rng.uniform(0.03, 0.12)
        img += amp * np.sin(2 * np.pi * (fy * y + fx * x))[..., None]
    return img


def _box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur with edge padding, via running sums."""
    width = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (radius + 1, radius)
        sums = np.cumsum(np.pad(img, pad, mode="edge"), axis=axis, dtype=np.float32)
        n = img.shape[axis]
        hi = [slice(None)] * img.ndim
        lo = [slice(None)] * img.ndim
        hi[axis], lo[axis] = slice(width, width + n), slice(0, n)
        img = (sums[tuple(hi)] - sums[tuple(lo)]) / width
    return img


def _blocking(img: np.ndarray, block: int) -> np.ndarray:
    h, w, c = img.shape
    means = img.reshape(h // block, block, w // block, block, c).mean(axis=(1, 3))
    return np.repeat(np.repeat(means, block, axis=0), block, axis=1)


def _distort(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "blur":
        return _box_blur(img, int(rng.integers(2, 6)))
    if kind == "noise":
        return img + rng.normal(0, rng.uniform(0.03, 0.1), img.shape).astype(np.float32)
    if kind == "blocking":
        return _blocking(img, int(rng.choice([8, 12, 24])))
    return img


def video_frames(count: int, seed: int) -> np.ndarray:
    """[count, 1080, 1920, 3] uint8 frames; frame i gets DISTORTIONS[i % 4]."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(count):
        img = _distort(_scene(rng), DISTORTIONS[i % len(DISTORTIONS)], rng)
        frames[i] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return frames


def _smooth_field(rng: np.random.Generator, count: int, size: int, channels: int) -> np.ndarray:
    coarse = rng.standard_normal((count, size // 4 + 1, size // 4 + 1, channels))
    fine = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :size, :size]
    return (fine + 0.3 * rng.standard_normal(fine.shape)).astype(np.float32)


def feature_maps(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spatially correlated NHWC content [count, 8, 8, 128] and distortion [count, 24, 24, 128]."""
    rng = np.random.default_rng(seed)
    return _smooth_field(rng, count, 8, 128), _smooth_field(rng, count, 24, 128)
