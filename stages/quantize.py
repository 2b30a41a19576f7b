"""Stage quantize@<model>: float32 .tflite -> INT8 .tflite (ai-edge-quantizer recipe)."""

from uvq_tflite.core.stage import run_stage
from uvq_tflite.quantize import quantize_int8, write_quantized
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    settings = params["quantization"]
    float_model = read_tflite(args.input)
    write_quantized(args.output, quantize_int8(float_model, settings["recipe"],
                                               settings["weight_only_ops"]), float_model)


if __name__ == "__main__":
    run_stage(main, __doc__, "input", "output", reads=("quantization",))
