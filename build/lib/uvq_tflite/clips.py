"""Generated H.264 clips: the pipeline's default videos, so real codec artifacts
go through the UVQ chain without any user file.

A scene of gradients, hard-edged shapes and stripes is panned across and
crossed by moving shapes, then encoded with x264 at a given CRF (a high CRF
gives blocking and blur). Pixels come from integer arithmetic only, and x264
is deterministic, so the same settings give the same bytes on every machine
with the same PyAV build.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np

CODEC = "libx264"
PRESET = "medium"


def _canvas(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 3]: a gradient, rectangles, discs and stripes."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    canvas = np.empty((height, width, 3), np.int64)
    for c in range(3):
        a, b = rng.integers(-96, 97, 2)
        canvas[..., c] = 128 + (a * x) // width + (b * y) // height
    for _ in range(int(rng.integers(12, 20))):
        color = rng.integers(0, 256, 3)
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = int(rng.integers(height // 20, height // 5))
        if rng.integers(0, 2):
            mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        else:
            mask = (abs(y - cy) < r) & (abs(x - cx) < 2 * r)
        canvas[mask] = color
    period = int(rng.integers(6, 24))
    stripes = ((x + 2 * y) // period) % 2 * 24 - 12  # a periodic texture
    return np.clip(canvas + stripes[..., None], 0, 255).astype(np.uint8)


def scene_frames(width: int, height: int, count: int, seed: int) -> Iterator[np.ndarray]:
    """`count` uint8 [height, width, 3] frames: a slow pan plus two moving discs."""
    rng = np.random.default_rng(seed)
    pan = min(count * 2, width // 2)  # long clips pan back and forth over a bounded canvas
    canvas = _canvas(rng, height + pan, width + pan)
    y, x = np.mgrid[0:height, 0:width]
    movers = [(rng.integers(0, height), rng.integers(0, width), rng.integers(-6, 7),
               rng.integers(-9, 10), rng.integers(0, 256, 3)) for _ in range(2)]
    for t in range(count):
        top, left = t % (pan // 2 + 1), 2 * t % (pan + 1)
        frame = canvas[top:top + height, left:left + width].copy()
        for cy, cx, vy, vx, color in movers:
            py, px = (cy + vy * t) % height, (cx + vx * t) % width
            frame[(y - py) ** 2 + (x - px) ** 2 < (height // 8) ** 2] = color
        yield frame


def encode_h264(frames: Iterator[np.ndarray], width: int, height: int, fps: int,
                crf: int, preset: str = PRESET) -> bytes:
    """An MP4 (H.264, yuv420p) of `frames` at `fps`, x264 at constant quality `crf`."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(CODEC, rate=fps, options={
            "crf": str(crf), "preset": preset, "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def stills_clip_bytes(settings: dict) -> bytes:
    """A clip of varied stills: synthetic 1080p scenes, clean or blurred, noisy or blocky
    (`synthetic.video_frames`, float arithmetic), one every 1/fps seconds."""
    from uvq_tflite.synthetic import HEIGHT, WIDTH, video_frames

    frames = video_frames(settings["frames"], settings["seed"])
    return encode_h264(iter(frames), WIDTH, HEIGHT, settings["fps"], settings["crf"])


def clip_bytes(settings: dict, crf: int, preset: str = PRESET) -> bytes:
    """The generated clip for params.yaml's `clips` section at quality `crf`."""
    count = settings["seconds"] * settings["fps"]
    frames = scene_frames(settings["width"], settings["height"], count, settings["seed"])
    return encode_h264(frames, settings["width"], settings["height"], settings["fps"], crf,
                       preset)
