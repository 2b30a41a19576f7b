"""Stage demo_checkpoint@<model>: write the deterministic demo checkpoint."""

from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage
from uvq_tflite.demo import demo_checkpoint_bytes


def main(args, params):
    write_atomic(args.output, demo_checkpoint_bytes(args.model))


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "output")
