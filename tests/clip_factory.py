"""Small clips written with PyAV for reader tests: each frame distinct, timing chosen."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, rate: Fraction | int = 25, count: int = 25, width: int = 64,
               height: int = 48, pts: list[int] | None = None, rotation: int | None = None,
               audio_seconds: int = 0) -> Path:
    """H.264 frames whose colours encode their number; `pts` in units of 1/rate.

    With `audio_seconds`, a silent AAC track starting at 0 is added (two streams).
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "10", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=8000, layout="mono") if audio_seconds else None
        for k in range(count):
            image = np.full((height, width, 3), (k * 37) % 256, np.uint8)
            image[: height // 2, : width // 2, 1] = (k * 91) % 256
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts = pts[k]
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound:
            _silence(container, sound, audio_seconds)
    return path


def _silence(container, sound, seconds: int) -> None:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000 * seconds), np.float32),
                                       format="fltp", layout="mono")
    frame.sample_rate, frame.pts = 8000, 0
    container.mux(sound.encode(frame))
    container.mux(sound.encode())


def write_audio_only(path: Path) -> Path:
    """An AAC file with one second of silence and no video stream."""
    with av.open(str(path), "w") as container:
        _silence(container, container.add_stream("aac", rate=8000, layout="mono"), 1)
    return path
