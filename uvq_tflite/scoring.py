"""End-to-end UVQ scores three ways: PyTorch reference, TFLite float32, TFLite INT8.

The seed's Table 2: the full chain (content + distortion + aggregation) on
whole frames, compared frame by frame.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from uvq_tflite import reference
from uvq_tflite.runtime import TFLiteRunner
from uvq_tflite.verification import run_per_call


def pytorch_scores(nets: dict[str, nn.Module], frames: np.ndarray) -> np.ndarray:
    """Reference scores [F] of NHWC frames in [-1, 1]."""
    content = reference.content_features(nets["content"], reference.resize_for_content(frames))
    distortion = reference.distortion_features(nets["distortion"], frames)
    return reference.aggregate(nets["aggregation"], content, distortion)[:, 0]


def tflite_scores(runners: dict[str, TFLiteRunner], frames_per_call: dict[str, int],
                  frames: np.ndarray) -> np.ndarray:
    """Scores [F] from the three .tflite models, fed as the deployment feeds them."""
    def run(model: str, *inputs: np.ndarray) -> np.ndarray:
        return run_per_call(runners[model], model, list(inputs), frames_per_call[model])

    content = run("content", reference.resize_for_content(frames))
    distortion = run("distortion", reference.split_patches(frames))
    return run("aggregation", content, distortion)[:, 0]


def score_agreement(pytorch: np.ndarray, converted: np.ndarray) -> dict[str, float]:
    """Absolute and relative score differences, and the video score (mean over frames)."""
    diff = np.abs(converted.astype(np.float64) - pytorch)
    rel = diff / np.abs(pytorch)
    return {"video_score": float(converted.mean()),
            "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()),
            "mean_rel_diff": float(rel.mean()), "max_rel_diff": float(rel.max())}
