"""The 4-D patch reassembly against independent statements of the reference semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uvq_tflite.deploy.distortion import reassemble_4d
from uvq_tflite.reference import reassemble_patches


def formula(patches: np.ndarray) -> np.ndarray:
    """out[f, row*h + y, col*w + x] = patch[f*9 + row*3 + col][y, x], element by element."""
    n, h, w, c = patches.shape
    out = np.full((n // 9, 3 * h, 3 * w, c), np.nan, patches.dtype)
    for f in range(n // 9):
        for row in range(3):
            for col in range(3):
                for y in range(h):
                    for x in range(w):
                        out[f, row * h + y, col * w + x] = patches[f * 9 + row * 3 + col, y, x]
    return out


def six_d(patches: np.ndarray) -> np.ndarray:
    """The same semantics as one 6-D reshape/transpose."""
    n, h, w, c = patches.shape
    return patches.reshape(n // 9, 3, 3, h, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        n // 9, 3 * h, 3 * w, c)


def seed_snippet(patches: torch.Tensor) -> torch.Tensor:
    """The seed document's 4-D chain, known to transpose each patch."""
    return patches.reshape(3, 24, 8, 128).permute(0, 2, 1, 3).contiguous().reshape(1, 24, 24, 128)


@pytest.fixture(params=[1, 2], ids=["1-frame", "2-frames"])
def patches(request):
    rng = np.random.default_rng(request.param)
    return rng.standard_normal((9 * request.param, 8, 8, 128)).astype(np.float32)


def test_4d_reassembly_equals_the_formula(patches):
    out = reassemble_4d(torch.from_numpy(patches)).numpy()
    np.testing.assert_array_equal(out, formula(patches))
    np.testing.assert_array_equal(out, six_d(patches))


def test_reference_reassembly_equals_the_formula(patches):
    np.testing.assert_array_equal(reassemble_patches(patches), formula(patches))


def test_reassembly_places_each_patch_by_row_and_column():
    patches = np.zeros((9, 8, 8, 1), np.float32)
    for p in range(9):
        patches[p] = p
    patches[5, 0, 7] = 100  # patch 5 = row 1, col 2; pixel y=0, x=7
    out = reassemble_4d(torch.from_numpy(patches)).numpy()[0, :, :, 0]
    for row in range(3):
        for col in range(3):
            block = out[row * 8:(row + 1) * 8, col * 8:(col + 1) * 8]
            assert (block[block != 100] == row * 3 + col).all()
    assert out[8 + 0, 16 + 7] == 100


def test_the_seed_snippet_is_detected_as_wrong():
    patches = np.random.default_rng(0).standard_normal((9, 8, 8, 128)).astype(np.float32)
    wrong = seed_snippet(torch.from_numpy(patches)).numpy()
    assert not np.array_equal(wrong, formula(patches))
