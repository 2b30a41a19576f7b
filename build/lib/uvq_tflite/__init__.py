"""UVQ 1.5 PyTorch checkpoints -> float32 and INT8 TFLite, verified.

`from uvq_tflite import score_video` scores clips as UVQ 1.5 does; it is
imported on first use so that `import uvq_tflite` stays free of torch.
"""

__version__ = "0.1.0"
__all__ = ["score_video"]


def __getattr__(name: str):
    if name == "score_video":
        from uvq_tflite.video_scoring import score_video

        return score_video
    raise AttributeError(f"module 'uvq_tflite' has no attribute {name!r}")
