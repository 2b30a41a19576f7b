"""PyTorch deployment wrapper -> float32 TFLite flatbuffer, via litert-torch."""

from __future__ import annotations

import contextlib
import copy
import sys

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from uvq_tflite.core.registry import network
from uvq_tflite.deploy import spec
from uvq_tflite.describe import described
from uvq_tflite.packing import pack, unpack


def export_float32(model: str, net: nn.Module, frames: int = 1,
                   checkpoint_sha256: str | None = None) -> bytes:
    """Convert the deployment wrapper of `net` to a float32 flatbuffer whose signature
    names its inputs and output as the registry does, described (describe.py) as made
    from the checkpoint with that hash."""
    info = network(model)
    data = _convert(_Named(spec(model).wrapper(fold_batch_norms(net)), info.input_names,
                           info.output_name), info.input_shapes(frames))
    return described(data, model, "float32", checkpoint_sha256)


def export_twin(model: str, net: nn.Module) -> bytes | None:
    """The float32 calibration twin of `model` (see ModelSpec.twin), or None if it has none."""
    model_spec, info = spec(model), network(model)
    if model_spec.twin is None:
        return None
    return _convert(_Named(model_spec.twin(fold_batch_norms(net)), info.input_names,
                           info.output_name), model_spec.twin_input_shapes)


class _Named(nn.Module):
    """The wrapper with keyword inputs and a one-entry dict output: litert-torch names
    the signature's inputs and output after them (not args_0 and output_0)."""

    def __init__(self, wrapper: nn.Module, inputs: tuple[str, ...], output: str):
        super().__init__()
        self.wrapper, self.inputs, self.output = wrapper, inputs, output

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.output: self.wrapper(*(inputs[name] for name in self.inputs))}


def _convert(named: _Named, input_shapes: list[tuple[int, ...]]) -> bytes:
    import litert_torch

    sample = {name: torch.zeros(shape) for name, shape in zip(named.inputs, input_shapes)}
    # litert-torch reports progress on stdout; keep stdout for results.
    with contextlib.redirect_stdout(sys.stderr):
        data = bytes(litert_torch.convert(named.eval(), sample_kwargs=sample).model_content())
    return _module_path_names(data, named)


def _module_path_names(data: bytes, root: nn.Module) -> bytes:
    """`data` with its tensors named by the module path that computes them.

    litert-torch names a tensor by the chain of modules it comes from, each as
    its qualified class and attribute ("uvq_tflite.export._Named/uvq_tflite.deploy
    .content.ContentDeploy_wrapper/.../torch.nn.modules.conv.Conv2d_fc1;1", 350
    characters a chain, over 1000 for a fused op's several), so a per-layer report
    cut to fit a line cannot tell the blocks apart. Each chain becomes the dotted
    path ("wrapper.net.features.13.block.2.fc1;1"), which names the layer and its
    checkpoint weights.
    """
    attrs = {f"{_class_name(type(m))}_{path.rsplit('.', 1)[-1]}": path.rsplit(".", 1)[-1]
             for path, m in root.named_modules() if path}
    top = _class_name(type(root))

    def readable(location: str) -> str:
        top_level, *chain = location.split("/")
        if top_level != top or not chain:
            return location
        return ".".join(attrs.get(link, link) for link in chain)

    model = unpack(data)
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.name = ";".join(map(readable, tensor.name.decode().split(";"))).encode()
        if len({t.name for t in graph.tensors}) != len(graph.tensors):
            raise RuntimeError("module-path tensor names collide")
    return pack(model)


def _class_name(cls: type) -> str:
    """A module class as litert-torch writes it into tensor names."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """An eval-mode copy of `net` with each BatchNorm2d that follows a conv folded into it.

    The TFLite converter folds them anyway; folding first leaves torch.export a
    smaller graph and shortens an EfficientNet conversion by about a third.
    A conv is an nn.Conv2d or a module holding one as `.conv`, directly before
    the BatchNorm2d in the same nn.Sequential.
    """
    net = copy.deepcopy(net).eval()
    for seq in net.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(1, len(seq)):
            owner, norm = seq[i - 1], seq[i]
            conv = owner if isinstance(owner, nn.Conv2d) else getattr(owner, "conv", None)
            if not (isinstance(norm, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d)):
                continue
            fused = fuse_conv_bn_eval(conv, norm)
            if owner is conv:
                seq[i - 1] = fused
            else:
                owner.conv = fused
            seq[i] = nn.Identity()
    return net
