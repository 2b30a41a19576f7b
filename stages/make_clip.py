"""Stage clip@<quality>: a generated H.264 clip at params' clips.crf.<quality>."""

from uvq_tflite.clips import clip_bytes
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage


def main(args, params):
    settings = params["clips"]
    write_atomic(args.output, clip_bytes(settings, settings["crf"][args.quality]))


if __name__ == "__main__":
    run_stage(main, __doc__, "quality", "output", reads=("clips",))
