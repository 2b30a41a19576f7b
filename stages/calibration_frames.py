"""Stage calibration_frames: real decoded frames of the clips in a folder (params'
calibration.clips, which dvc.yaml passes)."""

from uvq_tflite.calibration_set import clips_in, sample_frames, to_bytes
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage


def main(args, params):
    settings = params["calibration"]
    frames = sample_frames(clips_in(args.clips), settings["fps"],
                           settings["frames_per_clip"], settings["seed"])
    write_atomic(args.output, to_bytes(frames=frames))


if __name__ == "__main__":
    run_stage(main, __doc__, "clips", "output", reads=("calibration",))
