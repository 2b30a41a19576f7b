"""Stage calibration_clips: the default calibration clips, a moving scene and varied stills."""

from pathlib import Path

from uvq_tflite.clips import clip_bytes, stills_clip_bytes
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage


def main(args, params):
    generated = params["calibration"]["generated"]
    scene = {**params["clips"], "seed": generated["scene"]["seed"]}
    out = Path(args.output)
    write_atomic(out / "scene.mp4", clip_bytes(scene, generated["scene"]["crf"]))
    write_atomic(out / "stills.mp4", stills_clip_bytes(generated["stills"]))


if __name__ == "__main__":
    run_stage(main, __doc__, "output", reads=("clips", "calibration"))
