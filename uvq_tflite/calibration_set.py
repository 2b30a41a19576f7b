"""The calibration set of the full-integer models: real decoded frames, preprocessed as UVQ does.

Frames come from clips read exactly as UVQ reads them (`video.written_frames`), a
seeded choice of `frames_per_clip` per clip; the backbones take them as UVQ
feeds them (content: 256x256 bilinear, distortion: the 3x3 patches), and
AggregationNet takes the float32 backbones' feature maps of the same frames.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from uvq_tflite import reference
from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.files import visible_files
from uvq_tflite.core.registry import network


class CalibrationError(UserInputError):
    """Calibration clips or settings that cannot give the calibration set asked for."""


def clips_in(directory: str | Path) -> list[Path]:
    """The clips of a calibration folder: every file not hidden, in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationError(f"{directory}: not a directory of calibration clips")
    clips = visible_files(directory)
    if not clips:
        raise CalibrationError(f"{directory}: holds no clips to calibrate on")
    return clips


def sample_frames(clips: list[str | Path], fps: int, frames_per_clip: int,
                  seed: int) -> np.ndarray:
    """uint8 [clips * frames_per_clip, 1080, 1920, 3], chosen at random (seeded) per clip.

    Only frames the clip holds are chosen, never the zeros UVQ pads a short
    decode with (most clips: UVQ reads ceil(duration) seconds). When the first
    choice falls past the clip's last frame, it is made again among the frames
    the decode gave, which is still a uniform choice among them.
    CalibrationError names every clip that is unreadable or gives too few frames.
    """
    rng = np.random.default_rng(seed)
    chosen, problems = [], []
    for clip in clips:
        try:
            chosen += _clip_frames(clip, fps, frames_per_clip, rng)
        except UserInputError as exc:
            problems.append(str(exc))
    if problems:
        raise CalibrationError("\n".join(problems))
    return np.stack(chosen)


def _clip_frames(clip, fps: int, wanted: int, rng: np.random.Generator) -> list[np.ndarray]:
    from uvq_tflite.video import probe, written_frames  # only here: a saved set needs no decoder

    info = probe(clip, fps)
    if info.frame_count >= wanted:
        frames, held = _frames_at(info, _pick(info.frame_count, wanted, rng))
        if len(frames) == wanted:
            return frames
        # the decode ended before a chosen frame: `held` counts every frame the clip holds
    else:
        held = sum(1 for _ in written_frames(info))
    if held < wanted:
        padded = f" ({info.frame_count} with UVQ's zero padding)" if held < info.frame_count else ""
        raise CalibrationError(_too_few(clip, f"{held} frames at {fps} fps{padded}", wanted))
    return _frames_at(info, _pick(held, wanted, rng))[0]


def _too_few(clip, frames: str, wanted: int) -> str:
    return (f"{clip}: {frames}, fewer than the {wanted} frames_per_clip asked for; raise the "
            f"calibration fps or lower the frames per clip")


def clip_problems(directory: str | Path, fps: int, frames_per_clip: int) -> list[str]:
    """What `sample_frames` would refuse that probing tells without decoding, one line
    per clip: no readable video, or fewer frames than asked for even with UVQ's padding."""
    from uvq_tflite.video import probe

    problems = []
    for clip in clips_in(directory):
        try:
            info = probe(clip, fps)
        except UserInputError as exc:
            problems.append(str(exc))
            continue
        if info.frame_count < frames_per_clip:
            problems.append(_too_few(clip, f"at most {info.frame_count} frames at {fps} fps "
                                           f"({info.video_length} s)", frames_per_clip))
    return problems


def _pick(available: int, wanted: int, rng: np.random.Generator) -> set[int]:
    return set(rng.choice(available, wanted, replace=False).tolist())


def _frames_at(info, picks: set[int]) -> tuple[list[np.ndarray], int]:
    """The frames at `picks` that the clip holds, and how many frames were read for them."""
    from uvq_tflite.video import written_frames

    frames, read = [], 0
    for read, frame in enumerate(itertools.islice(written_frames(info), max(picks) + 1), 1):
        if read - 1 in picks:
            frames.append(frame)
    return frames, read


def to_bytes(**arrays: np.ndarray) -> bytes:
    """An .npz of `arrays`, byte-identical for equal arrays (no timestamps, no compression)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(data)


def backbone_samples(model: str, frames: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Inputs of the distortion or content model, one frame at a time."""
    for frame in frames:
        batch = reference.to_model_range(frame)[None]
        yield ([reference.split_patches(batch)] if model == "distortion"
               else [reference.resize_for_content(batch)])


def backbone_features(frames: np.ndarray, float_models: dict[str, bytes],
                      threads: int = 2) -> dict[str, np.ndarray]:
    """AggregationNet's calibration set: the float32 content and distortion models'
    feature maps of `frames`, {"content": [N, 8, 8, 128], "distortion": [N, 24, 24, 128]}."""
    from uvq_tflite.runtime import TFLiteRunner, run_per_call

    features = {}
    for model in ("content", "distortion"):
        runner = TFLiteRunner(float_models[model], threads, f"{model} float32 model")
        per_call = network(model).frames_per_call([list(d["shape"]) for d in runner.inputs])
        features[model] = np.concatenate([run_per_call(runner, model, inputs, per_call)
                                          for inputs in backbone_samples(model, frames)])
    return features


def model_samples(model: str, data: dict[str, np.ndarray]) -> Iterator[list[np.ndarray]]:
    """Calibration inputs of `model` from a calibration file's arrays: `frames` for the
    backbones, `content` and `distortion` feature maps for AggregationNet."""
    if model == "aggregation":
        return ([c[None], d[None]] for c, d in zip(data["content"], data["distortion"]))
    return backbone_samples(model, data["frames"])
