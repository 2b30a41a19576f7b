"""The three networks: everything specific to one of them that needs no torch.

Its math and deployment wrapper live in `module` (uvq_tflite/deploy/<name>.py,
which imports the network from uvq_tflite/nets/); what files and params
describe it lives here. Adding a network means one entry here, one module
there, and its keys in params.yaml (a test checks that dvc.yaml, this registry
and params.yaml agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRECISIONS = ("float32", "int8", "full_int8")  # of the .tflite files
SCORE_PRECISIONS = ("pytorch", *PRECISIONS)  # what `uvq-tflite score` compares


@dataclass(frozen=True)
class Network:
    """One network's files, NHWC shapes (per frame) and demo seed."""

    name: str
    sources: tuple[str, str]  # its math (uvq_tflite/nets/) and its wrapper (uvq_tflite/deploy/)
    inputs_per_frame: tuple[tuple[int, ...], ...]  # NHWC; the first dimension per frame
    output_per_frame: tuple[int, ...]
    demo_seed: int  # of its demo checkpoint (uvq_tflite/demo.py)
    input_names: tuple[str, ...]  # the .tflite signature's, in input order
    output_name: str
    inputs_are: str  # what an app feeds it (the .tflite metadata says so)
    output_is: str

    @property
    def module(self) -> str:
        """The module holding its deployment wrapper and ModelSpec."""
        return f"uvq_tflite.deploy.{self.name}"

    @property
    def file_stem(self) -> str:
        return f"{self.name}_net"

    def input_shapes(self, frames: int) -> list[tuple[int, ...]]:
        return [(frames * shape[0], *shape[1:]) for shape in self.inputs_per_frame]

    def output_shape(self, frames: int) -> tuple[int, ...]:
        return (frames * self.output_per_frame[0], *self.output_per_frame[1:])

    def call_bytes(self, frames: int) -> int:
        """float32 bytes of one call's inputs at `frames` frames per call."""
        return 4 * sum(math.prod(shape) for shape in self.input_shapes(frames))

    def frames_per_call(self, inputs: list[list[int]],
                        outputs: list[list[int]] | None = None) -> int:
        """Frames per call that these NHWC shapes are built for; 0 if they fit none."""
        try:
            frames = inputs[0][0] // self.inputs_per_frame[0][0]
        except (TypeError, IndexError, KeyError):
            return 0
        if frames < 1 or inputs != [list(s) for s in self.input_shapes(frames)]:
            return 0
        if outputs is not None and outputs != [list(self.output_shape(frames))]:
            return 0
        return frames

    def tflite_name(self, precision: str) -> str:
        """The seed's file names: distortion_net.tflite, distortion_net_int8.tflite, ..."""
        suffix = "" if precision == "float32" else f"_{precision}"
        return f"{self.file_stem}{suffix}.tflite"


FRAME = ("RGB frame, 1920x1080 (UVQ 1.5 resizes other sizes first), scaled to [-1, 1] "
         "(x / 127.5 - 1)")
_NETWORKS = (
    Network("distortion", ("uvq_tflite/nets/backbone.py", "uvq_tflite/deploy/distortion.py"),
            inputs_per_frame=((9, 360, 640, 3),), output_per_frame=(1, 24, 24, 128),
            demo_seed=1, input_names=("patches",), output_name="distortion_features",
            inputs_are=f"NHWC float: each {FRAME}, cut into a 3x3 grid of 360x640 patches, "
                       f"row by row (9 per frame)",
            output_is="NHWC float: one 24x24x128 feature map per frame, the 9 patches' "
                      "maps reassembled"),
    Network("content", ("uvq_tflite/nets/backbone.py", "uvq_tflite/deploy/content.py"),
            inputs_per_frame=((1, 256, 256, 3),), output_per_frame=(1, 8, 8, 128),
            demo_seed=2, input_names=("frame",), output_name="content_features",
            inputs_are=f"NHWC float: each {FRAME}, resized to 256x256 (bilinear, "
                       f"align_corners=False, as UVQ 1.5)",
            output_is="NHWC float: one 8x8x128 feature map per frame"),
    Network("aggregation", ("uvq_tflite/nets/aggregation.py",
                            "uvq_tflite/deploy/aggregation.py"),
            inputs_per_frame=((1, 8, 8, 128), (1, 24, 24, 128)), output_per_frame=(1, 1),
            demo_seed=3, input_names=("content_features", "distortion_features"),
            output_name="score",
            inputs_are="NHWC float: the content and distortion models' outputs for the same "
                       "frames",
            output_is="the UVQ 1.5 quality score of each frame (1 to 5)"),
)
NETWORKS = {n.name: n for n in _NETWORKS}
MODELS = tuple(NETWORKS)


def network(name: str) -> Network:
    """The registry entry of one of MODELS."""
    if name not in NETWORKS:
        raise KeyError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return NETWORKS[name]
