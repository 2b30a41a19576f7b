"""Stage quantize@<model>: float32 .tflite -> INT8 .tflite (ai-edge-quantizer recipe)."""

from uvq_tflite.core.console import log
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage
from uvq_tflite.quantize import quantize_int8, size_summary
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    settings = params["quantization"]
    float_model = read_tflite(args.input)
    data = quantize_int8(float_model, settings["recipe"], settings["weight_only_ops"])
    write_atomic(args.output, data)
    log(f"wrote {args.output}  {size_summary(len(data), len(float_model))}")


if __name__ == "__main__":
    run_stage(main, __doc__, "input", "output", reads=("quantization",))
