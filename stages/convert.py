"""Stage convert@<model>: normalized checkpoint -> float32 .tflite."""

from uvq_tflite.checkpoints import load_network
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.registry import network
from uvq_tflite.core.stage import run_stage
from uvq_tflite.describe import sha256_of
from uvq_tflite.export import export_float32


def main(args, params):
    frames = network(args.model).frames_per_call(params["models"][args.model]["inputs"])
    net = load_network(args.model, args.checkpoint)
    write_atomic(args.output, export_float32(args.model, net, frames,
                                             sha256_of(args.checkpoint)))


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "checkpoint", "output", reads=("models",))
