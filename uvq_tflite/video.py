"""Reading video exactly as the reference UVQ 1.5 reader does, one frame at a time.

The reference probes the clip with ffprobe (`video_length = ceil(duration)`,
`orig_fps = ceil(r_frame_rate)`), runs
`ffmpeg -i CLIP -vf [transpose=2,]scale=w=1920:h=1080:flags=bicubic,format=rgb24
-r FPS -f rawvideo -pix_fmt rgb24`, keeps the first `video_length * fps` frames
and pads a short decode with zero bytes. Here PyAV decodes, `frame_rate` picks
the frames that command writes, and the same filter chain (libswscale, bit-exact
with the command line) scales only those. Nothing holds more than one frame.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from uvq_tflite.core.errors import UserInputError, first_line
from uvq_tflite.frame_rate import RateConverter, output_time

WIDTH, HEIGHT = 1920, 1080
TRANSPOSE_MODES = ("auto", "on", "off")


class VideoError(UserInputError):
    """A video that cannot be read: missing, not a video, broken, no frames."""


@dataclass(frozen=True)
class VideoInfo:
    """What the reference reader is told about a clip, and what it makes of it."""

    path: str
    width: int           # coded size, as ffprobe's stream=width,height reports it
    height: int
    duration: float      # seconds, the container's
    orig_fps: int | None  # ceil(r_frame_rate), as UVQ's probe helper returns it
    fps: int             # frames scored per second of video
    transpose: bool      # rotate 90 degrees counter-clockwise first (portrait clips)

    @property
    def video_length(self) -> int:
        """Whole seconds scored: ceil of the duration."""
        return math.ceil(self.duration)

    @property
    def frame_count(self) -> int:
        return self.video_length * self.fps

    def frame_indices(self) -> list[int]:
        """UVQ's reported source-frame index of each scored frame (nominal, not decoded)."""
        if not self.orig_fps:
            return list(range(self.frame_count))
        return [int(round(i * self.orig_fps / self.fps)) for i in range(self.frame_count)]


def _open(path: Path):
    import av

    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file, not a video")
    try:
        return av.open(str(path))
    except PermissionError:
        raise VideoError(f"{path}: cannot read it (permission denied)") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path}: not a readable video (broken, cut short or "
                         f"another format): {first_line(exc)}") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoError(f"{path}: has no video stream ({', '.join(kinds)} only)")
    return container.streams.video[0]


def _ceil_rate(rate: Fraction | None) -> int | None:
    if not rate or rate.denominator == 0 or rate.numerator <= 0:
        return None
    return int(math.ceil(float(rate.numerator) / float(rate.denominator)))


def probe(path: str | Path, fps: int = 1, transpose: str = "auto") -> VideoInfo:
    """The clip's facts the reference reader uses; VideoError if it is no readable video."""
    if transpose not in TRANSPOSE_MODES:
        raise UserInputError(f"transpose must be one of {', '.join(TRANSPOSE_MODES)}, "
                             f"got {transpose!r}")
    if not isinstance(fps, int) or fps < 1:
        raise UserInputError(f"fps must be a positive integer, got {fps!r}")
    given, path = os.fspath(path), Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if container.duration is None:
            raise VideoError(f"{path}: the container states no duration, so the number "
                             f"of seconds to score is unknown")
        if container.duration <= 0:
            raise VideoError(f"{path}: the container states a duration of 0 s: nothing to score")
        portrait = height > width
        return VideoInfo(
            path=given, width=width, height=height,
            duration=container.duration / 1_000_000,
            orig_fps=_ceil_rate(stream.base_rate), fps=fps,
            transpose=portrait if transpose == "auto" else transpose == "on")


def _autorotate_filters(rotation: int) -> list[tuple[str, str | None]]:
    """The filters ffmpeg 5.1 inserts for a display matrix (its default -autorotate)."""
    theta = float(-round(rotation))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return [("transpose", "clock")]
    if abs(theta - 180) < 1:
        return [("hflip", None), ("vflip", None)]
    if abs(theta - 270) < 1:
        return [("transpose", "cclock")]
    if abs(theta) > 1:
        return [("rotate", f"{theta:f}*PI/180")]
    return []


class _Scaler:
    """The reference's filter chain, built for the first frame, reused for the rest."""

    def __init__(self, frame, time_base: Fraction, transpose: bool):
        import av

        chain = _autorotate_filters(frame.rotation)
        if transpose:
            chain.append(("transpose", "cclock"))  # transpose=2
        chain += [("scale", f"w={WIDTH}:h={HEIGHT}:flags=bicubic"), ("format", "rgb24")]
        self.graph = av.filter.Graph()
        node = self.source = self.graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format,
            time_base=time_base)
        for name, argument in chain:
            nxt = self.graph.add(name, argument)
            node.link_to(nxt)
            node = nxt
        self.sink = self.graph.add("buffersink")
        node.link_to(self.sink)
        self.graph.configure()

    def __call__(self, frame) -> np.ndarray:
        self.source.push(frame)
        return self.sink.pull().to_ndarray()


def _decoded(container, stream, path: Path) -> Iterator:
    """Decoded frames; like the ffmpeg command line, skip packets that fail to decode."""
    import av

    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue
    except av.error.FFmpegError as exc:  # a demuxing error ends the input, as in ffmpeg
        if isinstance(exc, av.error.InvalidDataError):
            return
        raise VideoError(f"{path}: reading failed: {first_line(exc)}") from None


def _sampled(container, stream, path: Path, info: VideoInfo) -> Iterator[np.ndarray]:
    """The frames the reference's ffmpeg command writes, in order, as rgb24 arrays.

    A repeat writes the last *decoded* frame, which ffmpeg may have dropped
    before: it is scaled only then.
    """
    converter = RateConverter(info.fps, stream.guessed_rate, len(container.streams) == 1,
                              stream.start_time is not None)
    scaler = last = last_image = None
    for frame in _decoded(container, stream, path):
        if scaler is None:
            scaler = _Scaler(frame, stream.time_base, info.transpose)
        time = None if frame.pts is None else output_time(
            frame.pts, stream.time_base, container.start_time, info.fps)
        repeats, copies = converter.push(time)
        if repeats and last is None:  # nothing decoded before: ffmpeg writes this one
            repeats, copies = 0, repeats + copies
        if repeats:
            last_image = scaler(last) if last_image is None else last_image
            yield from [last_image] * repeats
        last, last_image = frame, (scaler(frame) if copies else None)
        yield from [last_image] * copies
    if last is not None and (repeats := converter.flush()):
        yield from [scaler(last) if last_image is None else last_image] * repeats


def written_frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """The uint8 [1080, 1920, 3] frames the reference's ffmpeg writes, at most
    `info.frame_count`: fewer when the decode runs short (`ScoredFrames` pads those).

    VideoError if the clip cannot be read or yields no frame at all (the
    reference stops there too).
    """
    path = Path(info.path)
    count = 0
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        for frame in itertools.islice(_sampled(container, stream, path, info), info.frame_count):
            yield frame
            count += 1
    if count == 0:
        raise VideoError(f"{path}: no frame could be decoded")


class ScoredFrames:
    """Exactly `info.frame_count` frames, as the reference scores them: `written_frames`,
    then zero frames for a decode that ran short. Once an iteration has ended, `padding`
    says how many of them were those zeros (None before)."""

    def __init__(self, info: VideoInfo):
        self.info, self.padding = info, None

    def __iter__(self) -> Iterator[np.ndarray]:
        self.padding = None
        held = 0
        for held, frame in enumerate(written_frames(self.info), 1):
            yield frame
        self.padding = self.info.frame_count - held
        zeros = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        for _ in range(self.padding):
            yield zeros
