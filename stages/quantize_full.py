"""Stage quantize_full@<model>: float32 .tflite -> full-integer INT8 .tflite, calibrated."""

from uvq_tflite import calibration_set
from uvq_tflite.checkpoints import load_network
from uvq_tflite.core.stage import run_stage
from uvq_tflite.full_int8 import calibrated
from uvq_tflite.quantize import write_quantized
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    data = calibration_set.load(args.calibration)
    settings = params["full_int8"]
    float_model = read_tflite(args.input)
    quantized = calibrated(
        args.model, float_model, load_network(args.model, args.checkpoint),
        lambda: calibration_set.model_samples(args.model, data), settings["estimator"],
        settings["percentile"], params["verification"]["threads"], settings["io"])
    write_quantized(args.output, quantized, float_model)


if __name__ == "__main__":
    run_stage(main, __doc__, "model", "checkpoint", "input", "calibration", "output",
              reads=("full_int8", "verification"))
