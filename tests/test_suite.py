"""The test suite itself: without ../shared it skips only what reads it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO


def test_missing_reference_data_skips_only_the_tests_that_read_it(tmp_path):
    env = {**os.environ, "UVQ_SHARED": str(tmp_path / "nowhere")}
    env.pop("UVQ_REQUIRE_SHARED", None)  # CI sets it; here the skips are the point
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rs",
         "tests/test_checkpoints.py", "tests/test_networks.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|skipped)",
                                                            result.stdout))
    assert counts.get("passed", 0) >= 10 and counts.get("skipped", 0) >= 5, result.stdout[-800:]
    assert "reference data not found at" in result.stdout
    assert re.search(r"test_state_dict_matches_manifest\[content\] SKIPPED", result.stdout)
    assert re.search(r"test_learnable_parameter_count\[content-\d+\] PASSED", result.stdout)


def test_ci_refuses_to_run_without_the_reference_data(tmp_path):
    env = {**os.environ, "UVQ_SHARED": str(tmp_path / "nowhere"), "UVQ_REQUIRE_SHARED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_params.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "reference data not found at" in result.stderr + result.stdout
    assert "UVQ_REQUIRE_SHARED=1" in (REPO / ".ci" / "run").read_text()
