"""Stage calibration_features: the float32 backbones' feature maps of the calibration frames,
AggregationNet's calibration set."""

from uvq_tflite import calibration_set
from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.stage import run_stage
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    frames = calibration_set.load(args.frames)["frames"]
    float_models = {"content": read_tflite(args.content),
                    "distortion": read_tflite(args.distortion)}
    features = calibration_set.backbone_features(frames, float_models,
                                                 params["verification"]["threads"])
    write_atomic(args.output, calibration_set.to_bytes(**features))


if __name__ == "__main__":
    run_stage(main, __doc__, "frames", "content", "distortion", "output",
              reads=("verification",))
