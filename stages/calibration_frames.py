"""Stage calibration_frames: real decoded frames of the clips in a folder (params'
calibration.clips, which dvc.yaml passes)."""

from uvq_tflite.calibration_set import clips_in, sample_frames, to_bytes
from uvq_tflite.core.console import log
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage


def main(args, params):
    settings = params["calibration"]
    clips = clips_in(args.clips)
    frames = sample_frames(clips, settings["fps"], settings["frames_per_clip"], settings["seed"])
    write_atomic(args.output, to_bytes(frames=frames))
    names = ", ".join(c.name for c in clips[:5]) + (" ..." if len(clips) > 5 else "")
    log(f"wrote {args.output}: {len(frames)} frames, {settings['frames_per_clip']} of each of "
        f"{len(clips)} clip(s) read at {settings['fps']} fps ({names})")


if __name__ == "__main__":
    run_stage(main, __doc__, "clips", "output", reads=("calibration",))
