"""Stage quantize@<model>: float32 .tflite -> INT8 .tflite (ai-edge-quantizer recipe)."""

from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage
from uvq_tflite.quantize import quantize_int8
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    settings = params["quantization"]
    write_atomic(args.output, quantize_int8(read_tflite(args.input), settings["recipe"],
                                            settings["weight_only_ops"]))


if __name__ == "__main__":
    run_stage(main, __doc__, "input", "output", reads=("quantization",))
