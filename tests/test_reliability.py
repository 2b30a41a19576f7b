"""Adversarial inputs and concurrent use: one clear line, exit 2, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest
from conftest import PUBLISHED_AGGREGATION, REPO, VIDEOS

from uvq_tflite.core.files import write_atomic
from uvq_tflite.core.params import ParamsError, load_params
from uvq_tflite.core.registry import MODELS
from uvq_tflite.tflite_file import TFLiteFileError, read_tflite

WRITER = textwrap.dedent("""
    import sys
    from uvq_tflite.core.files import write_atomic
    for i in range(40):
        write_atomic(sys.argv[1], sys.argv[2].encode() * 100_000)
""")


def test_concurrent_writers_never_crash_and_the_last_complete_write_wins(tmp_path):
    out = tmp_path / "model.tflite"
    bystanders = [tmp_path / ".model.tflite.notes.tmp", tmp_path / ".my.notes.tmp"]
    for path in bystanders:
        path.write_text("the user's")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), letter],
                                stderr=subprocess.PIPE, text=True) for letter in "abcd"]
    results = [(w.wait(timeout=300), w.stderr.read()) for w in writers]
    assert all(code == 0 for code, _ in results), results
    assert out.read_bytes() in {c.encode() * 100_000 for c in "abcd"}
    assert all(p.read_text() == "the user's" for p in bystanders)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, *(p.name for p in bystanders)])  # no temporary file left


def test_glob_characters_in_an_output_name_touch_no_other_file(tmp_path):
    others = [tmp_path / "keep.tflite", tmp_path / ".keep.tflite.x.tmp"]
    for path in others:
        path.write_text("keep")
    write_atomic(tmp_path / "*", b"data")
    write_atomic(tmp_path / "[k]*", b"data")
    assert all(p.read_text() == "keep" for p in others)


def test_a_killed_writers_temporary_file_is_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".out.bin.uvq-tflite.{dead}.abcd1234.tmp"
    live = tmp_path / f".out.bin.uvq-tflite.{os.getppid()}.abcd1234.tmp"
    for path in (stale, live):
        path.write_bytes(b"partial")
    write_atomic(tmp_path / "out.bin", b"done")
    assert not stale.exists() and live.exists()


def test_a_writer_killed_before_its_rename_leaves_the_old_output_whole(tmp_path):
    # SIGKILL runs no cleanup: the destination must still be the old file, whole
    out = tmp_path / "model.tflite"
    out.write_bytes(b"old")
    code = ("import os, signal, sys\n"
            "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from uvq_tflite.core.files import write_atomic\n"
            "write_atomic(sys.argv[1], b'new' * 10**6)")
    assert subprocess.run([sys.executable, "-c", code, str(out)]).returncode == -signal.SIGKILL
    assert out.read_bytes() == b"old"
    assert [p.stat().st_size for p in tmp_path.glob(".model.tflite.*.tmp")] == [3 * 10**6]
    write_atomic(out, b"next")  # the next writer removes the dead one's temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    code = ("import os, sys; os.umask(int(sys.argv[2]));"
            "from uvq_tflite.core.files import write_atomic; write_atomic(sys.argv[1], b'x')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), str(umask)], check=True)
    assert (tmp_path / "out").stat().st_mode & 0o777 == mode


def params_with(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def problems(path) -> list[str]:
    with pytest.raises(ParamsError) as error:
        load_params(path)
    return str(error.value).splitlines()


def test_yaml_aliases_are_refused_at_once(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    started = time.monotonic()
    lines = problems(params_with(tmp_path, bomb))
    assert time.monotonic() - started < 2
    assert len(lines) == 1 and "aliases" in lines[0] and "line 2" in lines[0]


def test_duplicate_keys_are_refused(tmp_path):
    base = (REPO / "params.yaml").read_text()
    lines = problems(params_with(tmp_path, base + "\nthresholds:\n  max_rank: 3\n"))
    assert any("duplicate key 'thresholds'" in line for line in lines), lines


def test_a_non_utf8_params_file_is_one_line(tmp_path):
    lines = problems(params_with(tmp_path, b"checkpoints: \xff\xfe\n"))
    assert len(lines) == 1 and "not UTF-8" in lines[0]


def test_float_shapes_and_calls_too_large_for_memory_are_refused(tmp_path):
    base = (REPO / "params.yaml").read_text()
    text = base.replace("inputs: [[1, 256, 256, 3]]", "inputs: [[1.0, 256, 256, 3]]")
    assert any("models.content.inputs" in line for line in problems(params_with(tmp_path, text)))
    huge = base.replace("inputs: [[9, 360, 640, 3]]", "inputs: [[90000, 360, 640, 3]]")
    lines = problems(params_with(tmp_path, huge))
    assert any("models.distortion.inputs" in line and "GB" in line for line in lines), lines


def test_long_values_are_cut_in_messages(tmp_path):
    base = (REPO / "params.yaml").read_text()
    text = base.replace("recipe: dynamic_wi8_afp32", "recipe: " + "z" * 100_000)
    lines = problems(params_with(tmp_path, text))
    assert lines and all(len(line) < 300 for line in lines)


def test_a_large_non_model_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.tflite"
    with open(path, "wb") as f:
        f.truncate(512 << 20)  # sparse: 512 MB of zeros, no TFLite identifier
    tracemalloc.start()
    with pytest.raises(TFLiteFileError, match="not a TFLite flatbuffer"):
        read_tflite(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20
    model = tmp_path / "model.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(200)))
    assert read_tflite(model) == model.read_bytes()  # a model is read whole


def test_ctrl_c_in_a_stage_is_one_line_and_exit_130(tmp_path):
    code = textwrap.dedent("""
        from uvq_tflite.core.stage import run_stage
        def main(args, params):
            raise KeyboardInterrupt
        run_stage(main, "doc", reads=())
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 130
    assert result.stderr.strip().splitlines() == ["error: interrupted"]


def test_an_output_folder_that_is_a_file_fails_before_any_conversion(tmp_path):
    from test_checkpoints import run_cli

    (tmp_path / "out").write_text("a file")
    started = time.monotonic()
    result = run_cli("convert", "--model", "aggregation", "--precision", "float32",
                     "--checkpoint", str(PUBLISHED_AGGREGATION), "--output-dir",
                     str(tmp_path / "out" / "sub"))
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 60


@pytest.mark.parametrize("output, problem", [
    ("taken", "taken: a folder; give the file to write"),
    ("new/", "new/: not a file name; give the file to write"),
    ("notes/out.json", "notes: a file, not a folder"),
    ("missing/..", "missing/..: not a file name; give the file to write"),
    ("new/.", "new/.: not a file name; give the file to write"),
])
def test_an_output_file_path_that_cannot_be_one_is_refused(tmp_path, output, problem):
    from uvq_tflite.core.errors import UserInputError
    from uvq_tflite.core.files import check_writable_file

    (tmp_path / "taken").mkdir()
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(UserInputError, match=f"^{tmp_path}/{problem}$"):
        check_writable_file(f"{tmp_path}/{output}")
    with pytest.raises(UserInputError, match="^an empty output path"):
        check_writable_file("")


def test_score_and_convert_refuse_an_output_in_the_way_before_the_work(tmp_path):
    from test_checkpoints import run_cli

    (tmp_path / "aggregation_net_int8.tflite").mkdir()
    for args in (["score", str(VIDEOS / "carphone_pristine.mp4"), "--output", str(tmp_path)],
                 ["convert", "--model", "aggregation", "--precision", "int8", "--checkpoint",
                  str(PUBLISHED_AGGREGATION), "--output-dir", str(tmp_path)]):
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].endswith("a folder; give the file to write")
        assert "Traceback" not in result.stderr and "frames in" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["aggregation_net_int8.tflite"]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((VIDEOS / "carphone_pristine.mp4").read_bytes())
    result = run_cli("score", str(clip), "--output", f"{tmp_path}/./clip.mp4")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "clip.mp4: also an input of this command; write the output elsewhere")
    assert clip.read_bytes() == (VIDEOS / "carphone_pristine.mp4").read_bytes()


def test_an_unwritable_output_folder_is_named(tmp_path, monkeypatch):
    from uvq_tflite.core.errors import UserInputError
    from uvq_tflite.core.files import check_writable_dir

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a non-root user sees 0555
    with pytest.raises(UserInputError, match=f"{tmp_path} is not writable"):
        check_writable_dir(tmp_path / "new" / "models")


def test_every_missing_checkpoint_is_named(tmp_path):
    from test_checkpoints import run_cli

    result = run_cli("convert", "--model", "all", "--precision", "float32", "--checkpoint-dir",
                     str(tmp_path), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert [line.split(": ")[2].rsplit("/", 1)[-1] for line in result.stderr.splitlines()] == [
        f"{m}_net.pth" for m in MODELS]


def test_too_many_frames_per_call_is_refused_at_once(tmp_path):
    from test_checkpoints import run_cli

    result = run_cli("convert", "--model", "distortion", "--precision", "float32", "--frames",
                     "1000000000", "--checkpoint", str(PUBLISHED_AGGREGATION), "--output-dir",
                     str(tmp_path))
    assert result.returncode == 2 and "GB of input" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_checkpoint_that_inflates_to_gigabytes_is_refused_before_loading(tmp_path):
    import zipfile

    from uvq_tflite.checkpoints import read_state_dict
    from uvq_tflite.core.errors import CheckpointError

    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/0", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(1100):
                entry.write(chunk)
    assert path.stat().st_size < 4 << 20
    with pytest.raises(CheckpointError, match="unpacks to 1.2 GB"):
        read_state_dict(path)


def test_a_sparse_tensor_in_a_checkpoint_is_one_line(tmp_path):
    import torch

    from uvq_tflite.checkpoints import read_state_dict
    from uvq_tflite.core.errors import CheckpointError

    path = tmp_path / "sparse.pth"
    torch.save({"w": torch.eye(3).to_sparse()}, path)
    with pytest.raises(CheckpointError, match="1 sparse tensor"):
        read_state_dict(path)


def test_a_verify_stage_handed_another_networks_file_says_so(parity_models, tmp_path):
    checkpoints, tflite = parity_models
    wrong = str(tflite / "content_net.tflite")
    outs = [str(tmp_path / f"{n}.json") for n in ("metrics", "plot", "layers")]
    result = subprocess.run(
        [sys.executable, "stages/verify.py", "aggregation",
         str(checkpoints / "aggregation_net.pth"), wrong, wrong, wrong, *outs],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "content_net.tflite: inputs [[1, 256, 256, 3]] are not the aggregation network's" in line
    assert not any(os.path.exists(o) for o in outs)


def test_non_finite_metrics_are_written_as_strict_json_nulls(tmp_path):
    import json

    from uvq_tflite.core.files import write_json
    from uvq_tflite.metrics import significant

    write_json(tmp_path / "m.json", significant({"correlation": float("nan"),
                                                 "snr_db": float("inf"), "size_mb": 1.23456789}))
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text}")) == {
        "correlation": None, "snr_db": None, "size_mb": 1.23457}
