"""Which decoded frames the reference reader's `ffmpeg ... -r FPS -f rawvideo` writes.

UVQ 1.5 samples video with ffmpeg 5.1's *output* option `-r`, not the `fps`
filter. ffmpeg then keeps, drops or repeats each decoded frame by its encoder
side video-sync rule (`do_video_out` in 5.1's fftools/ffmpeg.c): constant frame
rate (`cfr`), or `vscfr` when the input file has a single stream. On a 25 fps
clip at `-r 1` it writes source frames 0, 1, 22, 47, 72, ... This module states
that rule, float rounding included, so a PyAV decode picks the same frames.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

MIDPOINT_NUDGE = 1.0 / (1 << 17)  # ffmpeg moves times off exact midpoints by this


def _rescale(value: int, source: Fraction, target: Fraction) -> int:
    """av_rescale_q: round to nearest, halfway cases away from zero."""
    exact = value * source / target
    rounded = math.floor(abs(exact) + Fraction(1, 2))
    return rounded if exact >= 0 else -rounded


def output_time(pts: int, time_base: Fraction, start_time_us: int | None, fps: int) -> float:
    """A frame's time in output frame periods (1/fps s), as ffmpeg 5.1 computes it.

    ffmpeg shifts input timestamps so the file starts at 0, then rescales to the
    encoder time base (1/fps) with 16 extra bits of precision.
    """
    if start_time_us:
        pts += _rescale(-start_time_us, Fraction(1, 1_000_000), time_base)
    extra_bits = min(max(29 - (fps.bit_length() - 1), 0), 16)
    scaled = _rescale(pts, time_base, Fraction(1, fps << extra_bits)) / (1 << extra_bits)
    return scaled + (MIDPOINT_NUDGE if scaled > 0 else -MIDPOINT_NUDGE)


def _rint_float(value: float) -> int:
    """llrintf: round a C float to the nearest integer, ties to even."""
    return int(np.rint(np.float32(value)))


class RateConverter:
    """ffmpeg 5.1's `cfr`/`vscfr` video sync for output rate `fps`.

    Feed each decoded frame's `output_time` to `push`, in decode order; it says
    how many times to write the previous frame and then how many times this
    one. `flush` says how often to repeat the last frame at the end.
    """

    def __init__(self, fps: int, input_rate: Fraction | None, single_stream: bool,
                 has_start_time: bool):
        # Frame duration in output periods: from the input rate, capped at one period.
        duration = 1 / (float(input_rate) * (1 / fps)) if input_rate else 0.0
        if has_start_time:
            duration = min(duration, 1 / (fps * (1 / fps)))
        self.duration = duration
        self.vscfr = single_stream
        self.next_output = 0  # ffmpeg's ost->sync_opts
        self.written = 0      # ffmpeg's ost->frame_number
        self.recent_repeats = [0, 0, 0]  # ost->last_nb0_frames

    def push(self, time: float | None) -> tuple[int, int]:
        """(copies of the previous frame, copies of this frame) to write now."""
        if time is None:  # no timestamp: ffmpeg's sync drops the frame
            return self._record(0, 0)
        duration = self.duration
        delta0 = time - self.next_output  # drift of this frame from its output slot
        delta = delta0 + duration
        if delta0 < 0 < delta:  # slightly late: clip it into the current slot
            duration += delta0
            delta0 = 0.0
            time = float(self.next_output)
        if self.vscfr and self.written == 0 and delta0 >= 0.5:  # do not pad the start
            delta = duration
            delta0 = 0.0
            self.next_output = int(np.rint(time))
        frames, previous = 1, 0
        if delta < -1.1:
            frames = 0
        elif delta > 1.1:
            frames = _rint_float(delta)
            if delta0 > 1.1:
                previous = _rint_float(delta0 - 0.6)
        return self._record(min(previous, frames), frames)

    def _record(self, previous: int, frames: int) -> tuple[int, int]:
        self.recent_repeats = [previous, *self.recent_repeats[:2]]
        self.next_output += frames
        self.written += frames
        return previous, frames - previous

    def flush(self) -> int:
        """Copies of the last frame ffmpeg writes when the input ends."""
        return sorted(self.recent_repeats)[1]
