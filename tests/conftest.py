"""Shared fixtures. Reference data is read in place from ../shared/uvq."""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UVQ_SHARED", REPO.parent / "shared" / "uvq"))
PARITY = SHARED / "parity"
VIDEOS = SHARED.parent / "videos"  # real clips and the reference's output for them
PUBLISHED_AGGREGATION = SHARED / "checkpoints" / "aggregation_net.pth"
PARITY_CHECKPOINTS = {
    "distortion": PARITY / "distortion_net_seed7.pth",
    "content": PARITY / "content_net_seed7.pth",
    "aggregation": PUBLISHED_AGGREGATION,
}


SHARED_NAMES = ("SHARED", "PARITY", "VIDEOS", "PUBLISHED_AGGREGATION", "PARITY_CHECKPOINTS")
SHARED_FIXTURES = ("expected", "parity_frame", "parity_nets", "calibration_frames", "converted",
                   "parity_models")


def _reads_shared(func) -> bool:
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return False
    return any(re.search(rf"\b{name}\b", source) for name in SHARED_NAMES)


def pytest_collection_modifyitems(config, items):
    """Without ../shared, skip exactly the tests that read it: directly, or through a
    fixture (ours or their module's) that does."""
    if SHARED.is_dir():
        return
    if os.environ.get("UVQ_REQUIRE_SHARED") == "1":  # CI: without its references, no pass
        raise pytest.UsageError(f"reference data not found at {SHARED}, and UVQ_REQUIRE_SHARED"
                                f"=1: the tests that compare with it would be skipped")
    skip = pytest.mark.skip(reason=f"reference data not found at {SHARED}: put shared/uvq "
                                   f"beside the repo or set UVQ_SHARED")
    for item in items:
        closure = getattr(item, "fixturenames", ())
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if (any(name in SHARED_FIXTURES for name in closure) or _reads_shared(item.function)
                or any(_reads_shared(d.func) for ds in defs.values() for d in ds)):
            item.add_marker(skip)


def parity_frame_u8(seed: int = 7) -> np.ndarray:
    """The integer-only 1080x1920 RGB frame of ../shared/uvq/README.md."""
    i, j, c = np.meshgrid(np.arange(1080), np.arange(1920), np.arange(3), indexing="ij")
    return ((i * (7 + seed) + j * 13 + c * 50 + (i * j) % (97 + seed)) % 256).astype(np.uint8)


@pytest.fixture(scope="session")
def expected():
    with np.load(PARITY / "expected_seed7.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="session")
def parity_frame(expected):
    """The parity frame as a [1, 1080, 1920, 3] float32 batch in [-1, 1]."""
    from uvq_tflite.reference import to_model_range

    u8 = parity_frame_u8()
    assert hashlib.sha256(u8.tobytes()).digest() == expected["frame_uint8_sha"].tobytes()
    return to_model_range(u8)[None]


@pytest.fixture(scope="session")
def parity_nets():
    from uvq_tflite.checkpoints import load_network

    return {m: load_network(m, p) for m, p in PARITY_CHECKPOINTS.items()}


@pytest.fixture(scope="session")
def calibration_frames():
    """Four real decoded frames, two of each clip in ../shared/videos, as the
    calibration stage picks them."""
    from uvq_tflite.calibration_set import sample_frames

    clips = [VIDEOS / "carphone_pristine.mp4", VIDEOS / "carphone_distorted.mp4"]
    return sample_frames(clips, fps=1, frames_per_clip=2, seed=0)


@pytest.fixture(scope="session")
def converted(parity_nets, calibration_frames):
    """{model: {precision: bytes}} for the parity weights, every precision; full_int8
    calibrated (min/max) on `calibration_frames`."""
    from uvq_tflite import calibration_set
    from uvq_tflite.export import export_float32
    from uvq_tflite.full_int8 import calibrated
    from uvq_tflite.quantize import quantize_int8

    out = {}
    for model, net in parity_nets.items():  # backbones first: aggregation calibrates on them
        float_model = export_float32(model, net)
        data = ({"frames": calibration_frames} if model != "aggregation" else
                calibration_set.backbone_features(
                    calibration_frames, {m: out[m]["float32"] for m in ("content", "distortion")}))
        out[model] = {"float32": float_model, "int8": quantize_int8(float_model),
                      "full_int8": calibrated(model, float_model, net,
                                              lambda: calibration_set.model_samples(model, data),
                                              "minmax", 99.99)}
    return out


@pytest.fixture(scope="session")
def parity_models(converted, tmp_path_factory):
    """(checkpoint dir, .tflite dir) holding the parity models under the pipeline's names."""
    from uvq_tflite.core.registry import network

    root = tmp_path_factory.mktemp("parity_models")
    checkpoints, tflite = root / "checkpoints", root / "tflite"
    checkpoints.mkdir()
    tflite.mkdir()
    for model, path in PARITY_CHECKPOINTS.items():
        (checkpoints / f"{network(model).file_stem}.pth").symlink_to(path)
        for precision, data in converted[model].items():
            (tflite / network(model).tflite_name(precision)).write_bytes(data)
    return checkpoints, tflite


def assert_close(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-4,
                 min_corr: float = 0.99999) -> None:
    """max|a-b| <= rel * max|b| and Pearson correlation >= min_corr."""
    assert actual.shape == expected.shape
    err = float(np.abs(actual - expected).max())
    bound = rel * float(np.abs(expected).max())
    assert err <= bound, f"max abs diff {err:.3g} > {bound:.3g}"
    if expected.size > 1:
        corr = float(np.corrcoef(actual.ravel(), expected.ravel())[0, 1])
        assert corr >= min_corr, f"correlation {corr:.7f} < {min_corr}"
