"""ffmpeg 5.1's `-r` video sync, restated: which decoded frames the reference writes.

test_video.py checks the whole reader against Debian's ffmpeg 5.1 on many more clips.
"""

from __future__ import annotations

from fractions import Fraction

from uvq_tflite.frame_rate import RateConverter, output_time

TIME_BASE = Fraction(1, 90000)


def written(rate: Fraction, count: int, fps: int = 1) -> list[int]:
    """Source frame numbers written for a single-stream constant-rate input of `count` frames."""
    converter = RateConverter(fps, rate, single_stream=True, has_start_time=True)
    out, previous = [], None
    for k in range(count):
        pts = round(k / rate / TIME_BASE)
        repeats, copies = converter.push(output_time(pts, TIME_BASE, 0, fps))
        out += [previous if previous is not None else k] * repeats + [k] * copies
        previous = k
    return out + [previous] * converter.flush()


def test_25_fps_at_1_fps_writes_the_frames_measured_on_the_command_line():
    # ../shared/videos/README.md: ffmpeg writes source frames 0, 1, 22, 47, 72, 97, 122.
    assert written(Fraction(25), 125) == [0, 1, 22, 47, 72, 97, 122]


def test_ntsc_rate_clip_writes_six_frames_for_four_seconds():
    # carphone: 120 frames at 30000/1001, of which the reference's ffmpeg wrote 6.
    assert len(written(Fraction(30000, 1001), 120)) == 6


def test_start_time_is_removed_before_sampling():
    # a stream starting at 10 s samples as if it started at 0
    assert output_time(10 * 90000, TIME_BASE, 10_000_000, 1) == output_time(0, TIME_BASE, 0, 1)
