"""Stage verify@<model>: every .tflite file against the PyTorch reference -> metrics, plot data,
and the full-integer model's per-layer SNR."""

from uvq_tflite.checkpoints import load_network
from uvq_tflite.core.files import write_json
from uvq_tflite.core.registry import network
from uvq_tflite.core.stage import run_stage
from uvq_tflite.metrics import significant
from uvq_tflite.verification import verify_model


def main(args, params):
    settings = params["verification"]
    metrics, points, layers = verify_model(
        args.model, load_network(args.model, args.checkpoint),
        {"float32": args.float32, "int8": args.int8, "full_int8": args.full_int8},
        frames=network(args.model).frames_per_call(params["models"][args.model]["inputs"]),
        samples=settings["samples"][args.model], seed=settings["seed"],
        threads=settings["threads"])
    write_json(args.output, significant(metrics))
    write_json(args.plot, significant(points))
    write_json(args.layers, significant(layers))


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "checkpoint", "float32", "int8", "full_int8", "output",
              "plot", "layers",
              reads=("models", "verification"))
