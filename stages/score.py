"""Stage score: K synthetic frames scored by the full chain in PyTorch, float32 and INT8."""

from uvq_tflite import reference, synthetic
from uvq_tflite.checkpoints import load_network
from uvq_tflite.deploy import MODELS, PRECISIONS, spec
from uvq_tflite.files import write_json
from uvq_tflite.metrics import significant
from uvq_tflite.runtime import TFLiteRunner
from uvq_tflite.scoring import pytorch_scores, score_agreement, tflite_scores
from uvq_tflite.stage import run_stage
from uvq_tflite.tflite_file import read_tflite


def main(args, params):
    settings = params["scoring"]
    frames = reference.to_model_range(synthetic.video_frames(settings["frames"],
                                                             settings["seed"]))
    nets = {m: load_network(m, f"{args.checkpoints}/{m}_net.pth") for m in MODELS}
    per_call = {m: spec(m).frames_per_call(params["models"][m]["inputs"]) for m in MODELS}
    scores = {"pytorch": pytorch_scores(nets, frames)}
    metrics = {"frames": settings["frames"], "pytorch_video_score": float(scores["pytorch"].mean())}
    for precision in PRECISIONS:
        paths = {m: f"{args.tflite}/{spec(m).tflite_name(precision)}" for m in MODELS}
        runners = {m: TFLiteRunner(read_tflite(p), params["verification"]["threads"], p)
                   for m, p in paths.items()}
        scores[precision] = tflite_scores(runners, per_call, frames)
        metrics[precision] = score_agreement(scores["pytorch"], scores[precision])
    per_frame = [{"frame": i, **{k: float(v[i]) for k, v in scores.items()}}
                 for i in range(settings["frames"])]
    write_json(args.metrics, significant(metrics))
    write_json(args.per_frame, significant(per_frame))


if __name__ == "__main__":
    run_stage(main, __doc__, "checkpoints", "tflite", "metrics", "per_frame",
              reads=("models", "verification", "scoring"))
