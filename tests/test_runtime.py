"""The LiteRT runner and the verify stage on bad model files: clear errors, no crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import PUBLISHED_AGGREGATION, REPO
from tiny_models import TinyConv, converted

from uvq_tflite.runtime import TFLiteRunner
from uvq_tflite.tflite_file import TFLiteFileError

FUZZ = textwrap.dedent("""
    import random, sys
    import numpy as np
    sys.path.insert(0, "tests")
    from tiny_models import TinyConv, converted
    from uvq_tflite.runtime import TFLiteRunner
    from uvq_tflite.tflite_file import TFLiteFileError
    original, rng = converted(TinyConv), random.Random(7)
    refused = ran = 0
    for _ in range(400):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            TFLiteRunner(bytes(data))(np.zeros((1, 8, 8, 3), np.float32))
            ran += 1
        except TFLiteFileError:
            refused += 1
    print("RESULT", refused, ran)
""")


def test_mutated_models_are_refused_or_run_never_crash():
    result = subprocess.run([sys.executable, "-c", FUZZ], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]  # a crash would be a signal
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    refused, ran = map(int, line.split()[1:])
    assert refused + ran == 400 and refused > 0


def test_runner_refuses_garbage_with_the_file_name():
    with pytest.raises(TFLiteFileError, match="bad.tflite"):
        TFLiteRunner(b"\x00" * 4 + b"TFL3" + b"\xff" * 100, name="bad.tflite")


def test_runner_runs_a_valid_model():
    out = TFLiteRunner(converted(TinyConv))(np.ones((1, 8, 8, 3), np.float32))
    assert out.shape == (1, 8, 8, 4)


def test_verify_stage_on_a_corrupt_file_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "aggregation_net.tflite"
    bad.write_bytes(b"not a model at all")
    metrics = tmp_path / "metrics.json"
    result = subprocess.run(
        [sys.executable, "stages/verify.py", "aggregation", str(PUBLISHED_AGGREGATION), str(bad),
         str(bad), str(bad), str(metrics), str(tmp_path / "plot.json"),
         str(tmp_path / "layers.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: not a TFLite flatbuffer (file identifier b'a mo', expected b'TFL3')"]
    assert not metrics.exists()
