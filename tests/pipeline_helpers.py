"""Running the DVC pipeline in a throwaway copy of the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
       "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
# Fewer samples than params.yaml: these tests are about what reruns.
FAST_SAMPLES = {"distortion": 1, "content": 1, "aggregation": 16}
FAST_CLIP_SECONDS = 1  # one scored frame per generated clip


TRACER = Path(__file__).parent / "tracer"  # its sitecustomize records each process's reads


def run(cwd: Path, *cmd: str, check: bool = True, timeout: int = 900,
        trace_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`cmd` in the copy `cwd`; with `trace_dir`, every Python process it starts writes
    there the files it imported and opened (tracer/sitecustomize.py)."""
    # PYTHONPATH: stages import the copy's uvq_tflite, not the editable install's
    env = {**ENV, "PYTHONPATH": str(cwd)}
    if trace_dir is not None:
        env.update(PYTHONPATH=f"{TRACER}{os.pathsep}{cwd}", UVQ_TRACE_DIR=str(trace_dir))
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def dvc(cwd: Path, *args: str, check: bool = True, timeout: int = 900,
        trace_dir: Path | None = None) -> subprocess.CompletedProcess:
    return run(cwd, str(BIN / "dvc"), *args, check=check, timeout=timeout, trace_dir=trace_dir)


def ran_stages(result: subprocess.CompletedProcess) -> set[str]:
    """Stages that `dvc repro` actually ran (not skipped, not restored from the run cache)."""
    return set(re.findall(r"Running stage '([^']+)'", result.stdout + result.stderr))


def edit_params(root: Path, change) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_project(dest: Path) -> Path:
    """The project's tracked and untracked (not ignored) files, as a fresh git repo."""
    files = run(REPO, "git", "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    shutil.rmtree(dest / "metrics", ignore_errors=True)  # built afresh by the tests
    (dest / "dvc.lock").unlink(missing_ok=True)
    run(dest, "git", "init", "-q")
    run(dest, "git", "add", "-A")
    run(dest, "git", "commit", "-qm", "copy")
    return dest


def commit_all(root: Path, message: str) -> None:
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", message)


def wait_for_process(cwd: Path, fragment: str, timeout: float = 180):
    """The Python process in `cwd` whose command line contains `fragment`.

    Not the shell DVC starts it from: /bin/sh (dash) forks rather than execs
    the command, and killing the shell would leave the stage running.
    """
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            cmdline = proc.info["cmdline"] or ()
            if (cmdline and Path(cmdline[0]).name.startswith("python")
                    and fragment in " ".join(cmdline) and proc.info["cwd"] == str(cwd)):
                return proc
        time.sleep(0.1)
    raise AssertionError(f"no process running {fragment!r} within {timeout} s")


def start_repro(root: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=root,
                            env={**ENV, "PYTHONPATH": str(root)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
