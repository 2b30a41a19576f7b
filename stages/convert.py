"""Stage convert@<model>: normalized checkpoint -> float32 .tflite."""

from uvq_tflite.checkpoints import load_network
from uvq_tflite.deploy import spec
from uvq_tflite.export import export_float32
from uvq_tflite.files import write_atomic
from uvq_tflite.stage import run_stage


def main(args, params):
    frames = spec(args.model).frames_per_call(params["models"][args.model]["inputs"])
    net = load_network(args.model, args.checkpoint)
    write_atomic(args.output, export_float32(args.model, net, frames))


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "checkpoint", "output", reads=("models",))
