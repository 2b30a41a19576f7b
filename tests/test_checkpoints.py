"""Bad checkpoints: one clear line, exit code 2, nothing written, no code run."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch
from conftest import PARITY_CHECKPOINTS, PUBLISHED_AGGREGATION, REPO

from uvq_tflite.deploy import spec


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uvq_tflite", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def no_depthwise_state():
    """The seed's wrong variant: full convolutions where UVQ has depthwise ones."""
    state = spec("distortion").network().state_dict()
    for key, value in list(state.items()):
        if value.ndim == 4 and value.shape[1] == 1 and value.shape[2] > 1:
            state[key] = torch.zeros(value.shape[0], value.shape[0], *value.shape[2:])
    return state


def make_bad(kind: str, tmp_path):
    path = tmp_path / "checkpoint.pth"
    if kind == "missing":
        return tmp_path / "nope.pth"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        torch.save(spec("aggregation").network().state_dict(), path)
        path.write_bytes(path.read_bytes()[:4096])
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "module":
        torch.save(spec("aggregation").network(), path)
    elif kind == "other-network":
        torch.save(spec("distortion").network().state_dict(), path)
    elif kind == "nan":
        state = spec("aggregation").network().state_dict()
        state["conv1.weight"][0, 0, 0, 0] = float("nan")
        torch.save(state, path)
    elif kind == "int-key":
        torch.save({0: torch.zeros(1)}, path)
    elif kind == "training-checkpoint":
        torch.save({"state_dict": spec("aggregation").network().state_dict()}, path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such checkpoint file"),
    ("empty", "empty file"),
    ("truncated", "not a readable PyTorch checkpoint"),
    ("text", "not a readable PyTorch checkpoint"),
    ("module", "refused to unpickle: it holds Python objects, not a plain state dict of tensors "
               "(Unsupported global: GLOBAL uvq_tflite.nets.aggregation.AggregationNet was not "
               "an allowed global by default)"),
    ("other-network", "353 unexpected keys: features.0.0.conv.weight"),
    ("training-checkpoint", "not a state dict of tensors: 'state_dict' is OrderedDict, not a "
                            "tensor; save that state dict on its own"),
    ("nan", "1 tensor(s) hold NaN or infinity (conv1.weight)"),
    ("int-key", "not a state dict of tensors: key 0 is int, not a tensor name"),
])
def test_bad_checkpoint_is_refused_with_one_line(kind, message, tmp_path):
    out = tmp_path / "out"
    result = run_cli("convert", "--precision", "int8", "--model", "aggregation", "--checkpoint",
                     str(make_bad(kind, tmp_path)), "--output-dir", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_no_depthwise_variant_names_the_shape_mismatch(tmp_path):
    path = tmp_path / "distortion_net.pth"
    torch.save(no_depthwise_state(), path)
    result = run_cli("convert", "--precision", "int8", "--model", "distortion", "--checkpoint",
                     str(path),
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert ("features.1.block.0.0.conv.weight is [32, 32, 3, 3] float32, expected "
            "[32, 1, 3, 3] float32") in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("container, message", [
    ("torch-zip", "refused to unpickle: it holds Python objects, not a plain state dict of "
                  "tensors (Trying to load unsupported GLOBAL posix.system whose module posix "
                  "is blocked)"),
    ("raw-pickle", "not a readable PyTorch checkpoint (Unsupported operand 149)"),
])
def test_code_in_a_pickle_is_never_run(container, message, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "aggregation_net.pth"
    if container == "torch-zip":
        torch.save({"conv1.weight": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    result = run_cli("convert", "--precision", "int8", "--model", "aggregation", "--checkpoint",
                     str(path),
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"uvq-tflite: error: {path}: {message}"
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_all_checkpoints_are_validated_before_any_file_is_written(tmp_path):
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    (ckpts / "aggregation_net.pth").write_bytes(PUBLISHED_AGGREGATION.read_bytes())
    (ckpts / "distortion_net.pth").write_bytes(PARITY_CHECKPOINTS["distortion"].read_bytes())
    # content_net.pth is missing: nothing may be written for the other two either.
    result = run_cli("convert", "--precision", "int8", "--model", "all", "--checkpoint-dir",
                     str(ckpts),
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "content_net.pth: no such checkpoint file" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [
    ["convert", "--model", "all", "--checkpoint", "x.pth", "--output-dir", "o"],
    ["convert", "--model", "bogus", "--checkpoint-dir", "d", "--output-dir", "o"],
    ["convert", "--model", "content", "--output-dir", "o"],
    ["convert", "--model", "content", "--checkpoint-dir", "d", "--output-dir", "o",
     "--frames", "0"],
])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uvq-tflite"), result.stderr
    assert ": error: " in lines[0]


@pytest.mark.parametrize("args, message", [
    (["convert", "--percentile", "150"], "--percentile: '150' is invalid; expected a number "
                                         "from 50 to 100"),
    (["convert", "--percentile", "nan"], "--percentile: 'nan' is invalid"),
    (["convert", "--calibration-fps", "1000"], "--calibration-fps: '1000' is invalid; expected "
                                               "an integer from 1 to 60"),
    (["convert", "--frames-per-clip", "0"], "--frames-per-clip: '0' is invalid"),
    (["score", "clip.mp4", "--fps", "61"], "--fps: '61' is invalid"),
    (["score", "clip.mp4", "--threads", "two"], "--threads: 'two' is invalid"),
    (["inspect", "m.tflite", "--max-rank", "9"], "--max-rank: '9' is invalid"),
    (["score", "clip.mp4", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_options_take_what_params_takes_for_the_same_setting(args, message, capsys):
    """A value params.yaml refuses for a setting is refused as an option too, in one line."""
    from uvq_tflite.cli import main

    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert err.endswith(f"(see uvq-tflite {args[0]} --help)\n")
