"""The embedded demo checkpoints: published layout, byte-identical, natural activations."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch

from uvq_tflite.demo import demo_checkpoint_bytes
from uvq_tflite.deploy import spec

# SHA-256 of each demo checkpoint: a change here means every user's default changes.
DEMO_SHA256 = {
    "distortion": "8a1d69e4020b434d55e393a3c874d1050dc8f62ae5025d02844ade13461d2970",
    "content": "59bfa0f19fc9c8e99d07e21ddb43b1977aa41ed894b65545b4052a4f97792ef9",
    "aggregation": "3c7ee8d0bcf24e9afd5169acc89a95fbb7dc6a9a7081e079679182cb234c4e30",
}


@pytest.mark.parametrize("model", sorted(DEMO_SHA256))
def test_demo_checkpoint_is_byte_identical(model):
    data = demo_checkpoint_bytes(model)
    assert hashlib.sha256(data).hexdigest() == DEMO_SHA256[model]
    assert demo_checkpoint_bytes(model) == data


@pytest.mark.parametrize("model", sorted(DEMO_SHA256))
def test_demo_checkpoint_loads_strictly(model):
    state = torch.load(io.BytesIO(demo_checkpoint_bytes(model)), weights_only=True)
    spec(model).network().load_state_dict(state, strict=True)


@pytest.mark.parametrize("model", ["distortion", "content"])
def test_demo_backbone_keeps_activations_in_a_natural_range(model):
    from uvq_tflite import reference, synthetic

    net = spec(model).network().eval()
    net.load_state_dict(torch.load(io.BytesIO(demo_checkpoint_bytes(model)), weights_only=True))
    frames = reference.to_model_range(synthetic.video_frames(2, seed=11))
    x = reference.split_patches(frames)[:2] if model == "distortion" \
        else reference.resize_for_content(frames)
    h = torch.from_numpy(x).permute(0, 3, 1, 2)
    with torch.no_grad():
        for layer in net.features:
            h = layer(h)
            assert 0.05 < float(h.std()) < 20
