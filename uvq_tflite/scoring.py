"""End-to-end UVQ scores of frames: the PyTorch reference chain, or the three .tflite models.

The full chain (content + distortion + aggregation) on whole frames, as
`video_scoring` runs it per precision.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from uvq_tflite import reference
from uvq_tflite.runtime import TFLiteRunner, run_per_call


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
