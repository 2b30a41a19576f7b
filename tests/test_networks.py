"""The three networks: published key layout and parity with the reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SHARED, assert_close

from uvq_tflite import reference as ref
from uvq_tflite.core.registry import MODELS
from uvq_tflite.deploy import spec
from uvq_tflite.nets.backbone import MBCONV_TABLE, same_padding


@pytest.mark.parametrize("model", MODELS)
def test_state_dict_matches_manifest(model):
    manifest = json.loads((SHARED / "state_dict_manifest.json").read_text())
    state = spec(model).network().state_dict()
    actual = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in state.items()]
    assert sorted(actual) == sorted(manifest[model])


@pytest.mark.parametrize("model, params", [("distortion", 3_759_228), ("content", 3_759_228),
                                           ("aggregation", 74_241)])
def test_learnable_parameter_count(model, params):
    assert sum(p.numel() for p in spec(model).network().parameters()) == params


def test_both_backbones_come_from_one_table():
    d, c = spec("distortion").network(), spec("content").network()
    assert len(d.features) == len(c.features) == len(MBCONV_TABLE) + 2
    assert [type(m) for m in d.features] == [type(m) for m in c.features]


@pytest.mark.parametrize("size, kernel, stride, pads", [
    (360, 3, 2, (0, 1)), (12, 2, 1, (0, 1)), (23, 5, 2, (2, 2)), (8, 3, 1, (1, 1)),
    (1, 5, 2, (2, 2)),
])
def test_same_padding_follows_the_tensorflow_rule(size, kernel, stride, pads):
    assert same_padding(size, kernel, stride) == pads


def test_distortion_core_on_first_two_patches(parity_nets, parity_frame, expected):
    patches = ref.split_patches(parity_frame)[:2]
    out = ref.distortion_patch_features(parity_nets["distortion"], patches)
    assert_close(out, expected["distortion_core_patches01"])


def test_distortion_whole_frame(parity_nets, parity_frame, expected):
    assert_close(ref.distortion_features(parity_nets["distortion"], parity_frame),
                 expected["distortion_frame"])


def test_content_resize_and_features(parity_nets, parity_frame, expected):
    content_input = ref.resize_for_content(parity_frame)
    assert_close(content_input, expected["content_input_256"])
    assert_close(ref.content_features(parity_nets["content"], content_input),
                 expected["content_frame"])


def test_published_aggregation_score(parity_nets, expected):
    score = ref.aggregate(parity_nets["aggregation"], expected["content_frame"],
                          expected["distortion_frame"])
    assert_close(score, expected["score"])
    assert 1.0 < float(score[0, 0]) < 5.0


def test_prefixed_state_dict_loads(tmp_path):
    from uvq_tflite.checkpoints import load_network

    state = spec("aggregation").network().state_dict()
    torch.manual_seed(0)
    state = {f"model.{k}": torch.randn_like(v) for k, v in state.items()}
    path = tmp_path / "aggregation_net.pth"
    torch.save(state, path)
    net = load_network("aggregation", path)
    assert torch.equal(net.conv1.weight, state["model.conv1.weight"])


def test_reference_matches_numpy_on_patch_split():
    frames = np.arange(2 * 6 * 9 * 1, dtype=np.float32).reshape(2, 6, 9, 1)
    patches = ref.split_patches(frames)
    assert patches.shape == (18, 2, 3, 1)
    # patch 5 of frame 1 is row 1, col 2
    np.testing.assert_array_equal(patches[9 + 5], frames[1, 2:4, 6:9])
