"""Stage score_video@<clip>: one clip scored as UVQ 1.5 does, PyTorch and every .tflite."""

from uvq_tflite.core.console import Progress
from uvq_tflite.core.files import write_json
from uvq_tflite.core.registry import SCORE_PRECISIONS
from uvq_tflite.core.stage import run_stage
from uvq_tflite.metrics import significant
from uvq_tflite.video import probe
from uvq_tflite.video_scoring import clip_metrics, load_scorers, score_clip


def main(args, params):
    settings = params["scoring"]
    info = probe(args.video, settings["fps"], settings["transpose"])
    scorers = load_scorers(SCORE_PRECISIONS, args.checkpoints, args.tflite, settings["threads"])
    progress = Progress(args.video, info.frame_count, "frames")
    result = score_clip(info, scorers, progress)
    progress.close()
    metrics, per_frame = clip_metrics(result)
    write_json(args.metrics, significant(metrics))
    write_json(args.per_frame, significant(per_frame))


if __name__ == "__main__":
    run_stage(main, __doc__, "video", "checkpoints", "tflite", "metrics", "per_frame",
              reads=("scoring",))
