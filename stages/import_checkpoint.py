"""Stage import_checkpoint@<model>: read params' checkpoint safely, save it normalized."""

from uvq_tflite.checkpoints import normalized_checkpoint_bytes
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage


def main(args, params):
    write_atomic(args.output, normalized_checkpoint_bytes(params["checkpoints"][args.model]))


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "output", reads=("checkpoints",))
