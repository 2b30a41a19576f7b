"""The video reader against what the reference reader's ffmpeg command writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clip_factory import write_clip
from conftest import VIDEOS

from uvq_tflite import video

REAL_CLIPS = ("carphone_pristine.mp4", "carphone_distorted.mp4")
FRAME_BYTES = video.WIDTH * video.HEIGHT * 3


@pytest.fixture(scope="module")
def reference():
    return json.loads((VIDEOS / "expected_seed7.json").read_text())["clips"]


def sha256(frame: np.ndarray) -> str:
    return hashlib.sha256(frame.tobytes()).hexdigest()


def written_by_reader(path: Path, fps: int = 1, transpose: str = "auto") -> list[str]:
    """sha256 of every frame the reader's ffmpeg emulation writes, before UVQ truncates."""
    info = video.probe(path, fps, transpose)
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [sha256(f) for f in video._sampled(container, stream, path, info)]


@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_real_clip_frames_are_the_reference_readers_bytes(clip, reference):
    expected = reference[clip]
    info = video.probe(VIDEOS / clip)
    assert (info.video_length, info.orig_fps, info.transpose) == (
        expected["video_length"], expected["orig_fps"], expected["transpose"])
    assert info.frame_indices() == expected["frame_indices"]
    # all that ffmpeg writes (one more than UVQ keeps), then what UVQ keeps
    assert written_by_reader(VIDEOS / clip) == expected["frame_sha256"]
    kept = [sha256(f) for f in video.ScoredFrames(info)]
    assert kept == expected["frame_sha256"][:info.frame_count]


# The reference command, run by Debian's ffmpeg 5.1 (the version the reference data
# was made with) on clips that exercise each branch of its frame-rate logic.
ORACLE_CLIPS = {
    "25fps": dict(rate=25, count=125),
    "24fps_at_5fps": dict(rate=24, count=72),
    "repeats_a_slow_source": dict(rate=Fraction(1, 2), count=4),
    "portrait_transposed": dict(rate=25, count=60, width=48, height=64),
    "rotated_90": dict(rate=25, count=50, rotation=90),
    "rotated_270": dict(rate=25, count=50, rotation=-90),
    "late_video_after_audio": dict(rate=25, count=75, pts=[50 + k for k in range(75)],
                                   audio_seconds=4),
    "variable_frame_rate": dict(rate=50, count=14, pts=[0, 10, 11, 40, 41, 42, 90, 91, 150,
                                                        151, 152, 153, 200, 260]),
}
def _ffmpeg_5_1() -> bool:
    if shutil.which("ffmpeg") is None:
        return False
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    return version.startswith("ffmpeg version 5.1")


needs_ffmpeg = pytest.mark.skipif(
    not os.environ.get("CI") and not _ffmpeg_5_1(),
    reason="the oracle is ffmpeg 5.1, the reference's version (Debian 12's; CI installs it)")


def reference_command_frames(path: Path, fps: int, transpose: bool) -> list[str]:
    rotate = "transpose=2," if transpose else ""
    out = path.with_suffix(".rgb")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf",
                    f"{rotate}scale=w=1920:h=1080:flags=bicubic,format=rgb24", "-r", str(fps),
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", str(out)], check=True)
    data = out.read_bytes()
    return [hashlib.sha256(data[i:i + FRAME_BYTES]).hexdigest()
            for i in range(0, len(data), FRAME_BYTES)]


@needs_ffmpeg
@pytest.mark.parametrize("name", ORACLE_CLIPS)
def test_reader_writes_what_ffmpeg_5_1_writes(name, tmp_path):
    path = write_clip(tmp_path / f"{name}.mp4", **ORACLE_CLIPS[name])
    fps = 5 if name.endswith("5fps") else 1
    portrait = name.startswith("portrait")
    expected = reference_command_frames(path, fps, portrait)
    assert len(expected) > 2
    assert written_by_reader(path, fps) == expected


def test_short_decode_is_padded_with_zero_frames(tmp_path):
    # 4 frames at 0.5 fps last 8 s: UVQ scores 8 frames, ffmpeg writes 7, the 8th is zeros
    info = video.probe(write_clip(tmp_path / "slow.mp4", rate=Fraction(1, 2), count=4))
    scored = video.ScoredFrames(info)
    frames = list(scored)
    assert (info.video_length, len(frames), scored.padding) == (8, 8, 1)
    assert frames[6].any() and not frames[7].any()
    assert len(list(video.written_frames(info))) == 7


def test_portrait_clips_are_transposed_unless_told_otherwise(tmp_path):
    path = write_clip(tmp_path / "portrait.mp4", width=48, height=64)
    assert video.probe(path).transpose
    assert not video.probe(path, transpose="off").transpose
    assert video.probe(write_clip(tmp_path / "wide.mp4"), transpose="on").transpose


def test_reader_streams_instead_of_holding_the_clip(tmp_path):
    # 40 s at 1 fps: 40 frames of 6.2 MB. Python-side peak stays near two frames.
    info = video.probe(write_clip(tmp_path / "long.mp4", rate=5, count=200))
    tracemalloc.start()
    try:
        count = sum(1 for _ in video.ScoredFrames(info))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 40
    assert peak < 3 * FRAME_BYTES, f"peak {peak / 1e6:.0f} MB"


def test_decoding_stops_once_every_kept_frame_is_read(tmp_path, monkeypatch):
    info = video.probe(write_clip(tmp_path / "clip.mp4", rate=25, count=100))
    decoded = []
    original = video._decoded

    def counting(*args):
        for frame in original(*args):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video, "_decoded", counting)
    assert sum(1 for _ in video.ScoredFrames(info)) == 4
    assert 0 < len(decoded) < 100
