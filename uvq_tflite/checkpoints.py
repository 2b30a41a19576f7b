"""Safe loading and validation of UVQ 1.5 checkpoints."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from uvq_tflite.core.errors import CheckpointError, first_line
from uvq_tflite.deploy import spec

PREFIX = "model."
MAX_LISTED = 3
# The largest network holds 15 MB of weights; the seed's "no depthwise" mistake 0.6 GB,
# which still deserves its shape-mismatch message.
MAX_CHECKPOINT_BYTES = 1_000_000_000


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a plain state-dict file; never runs pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint")
    _check_archive(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says more
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_detail(str(exc))
        if "unsupported global" in detail.lower():
            raise CheckpointError(
                f"{path}: refused to unpickle: it holds Python objects, not a plain "
                f"state dict of tensors ({detail})") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({detail})") from None
    except Exception as exc:  # weights_only: a failure here never ran any code
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or another "
            f"format; torch.load: {type(exc).__name__} {first_line(exc)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict (expected a mapping of "
                              f"names to tensors, got {type(state).__name__})")
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: not a state dict of tensors: key {repr(key)[:60]} "
                                  f"is {type(key).__name__}, not a tensor name")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: not a state dict of tensors: {repr(key)[:60]} is "
                                  f"{type(value).__name__}, not a tensor" + (
                                      "; save that state dict on its own"
                                      if isinstance(value, dict) else ""))
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        raise CheckpointError(f"{path}: {len(sparse)} sparse tensor(s) ({_listed(sparse)}); "
                              f"UVQ 1.5 checkpoints hold dense tensors")
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if nonfinite:
        raise CheckpointError(f"{path}: {len(nonfinite)} tensor(s) hold NaN or infinity "
                              f"({_listed(nonfinite)})")
    if state and all(k.startswith(PREFIX) for k in state):
        state = {k[len(PREFIX):]: v for k, v in state.items()}
    return state


def _weights_only_detail(message: str) -> str:
    """The sentence of torch's weights-only refusal (a paragraph) that says what it met:
    the line after `WeightsUnpickler error:`, else one naming an unsupported global."""
    head, _, tail = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (tail or head).splitlines() if line.strip()]
    if not tail:
        lines = ([line for line in lines if "unsupported global" in line.lower()] or
                 [line.removeprefix("Weights only load failed.").strip() for line in lines[:1]])
    return lines[0].split(". ")[0].rstrip(".")[:160] if lines and lines[0] else "no detail"


def _check_archive(path: Path) -> None:
    """Refuse a checkpoint whose entries would inflate past MAX_CHECKPOINT_BYTES, before
    torch.load materialises them (a 13 MB deflated file can hold gigabytes)."""
    if not zipfile.is_zipfile(path):
        return  # legacy pickle format: its size is what it holds
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: "
                              f"{first_line(exc)}") from None
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: unpacks to {total / 1e9:.1f} GB; a UVQ 1.5 checkpoint "
                              f"holds far less (limit {MAX_CHECKPOINT_BYTES / 1e9:.0f} GB)")


def _listed(items: list[str]) -> str:
    more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def layout_problems(expected: dict[str, torch.Tensor],
                    state: dict[str, torch.Tensor]) -> list[str]:
    """Missing and unexpected keys, then shape and dtype mismatches."""
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
    mismatched = [
        f"{k} is {list(state[k].shape)} {str(state[k].dtype).removeprefix('torch.')}, "
        f"expected {list(v.shape)} {str(v.dtype).removeprefix('torch.')}"
        for k, v in expected.items()
        if k in state and (state[k].shape != v.shape or state[k].dtype != v.dtype)]
    if mismatched:
        problems.append(f"{len(mismatched)} shape/dtype mismatches: {_listed(mismatched)}")
    return problems


def load_network(model: str, path: str | Path) -> nn.Module:
    """The `model` network in eval mode with the checkpoint's weights."""
    net = spec(model).network()
    state = read_state_dict(path)
    problems = layout_problems(net.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{path}: not a UVQ 1.5 {model} checkpoint: " + "; ".join(problems))
    net.load_state_dict(state, strict=True)
    return net.eval()


def state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """`torch.save` of a state dict, byte-identical for equal tensors."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def normalized_checkpoint_bytes(path: str | Path) -> bytes:
    """A checkpoint's tensors re-saved canonically, without a `model.` prefix."""
    return state_dict_bytes(read_state_dict(path))
