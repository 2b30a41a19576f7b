"""Stage verify@<model>: both .tflite files against the PyTorch reference -> metrics JSON."""

import json

from uvq_tflite.checkpoints import load_network
from uvq_tflite.deploy import spec
from uvq_tflite.files import write_atomic
from uvq_tflite.metrics import significant
from uvq_tflite.stage import run_stage
from uvq_tflite.verification import verify_model


def main(args, params):
    settings = params["verification"]
    metrics = verify_model(
        args.model, load_network(args.model, args.checkpoint),
        {"float32": args.float32, "int8": args.int8},
        frames=spec(args.model).frames_per_call(params["models"][args.model]["inputs"]),
        samples=settings["samples"][args.model], seed=settings["seed"],
        threads=settings["threads"])
    text = json.dumps(significant(metrics), indent=2, sort_keys=True) + "\n"
    write_atomic(args.output, text.encode())


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "checkpoint", "float32", "int8", "output",
              reads=("models", "verification"))
