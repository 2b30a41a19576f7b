"""The build around the library: make targets and packaging."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
import zipfile

from conftest import REPO
from pipeline_helpers import copy_project, run


def test_make_clean_removes_generated_files_and_keeps_tracked_ones(tmp_path):
    root = copy_project(tmp_path / "project")
    generated = [root / "models/tflite/content_net.tflite", root / "models/demo/content_net.pth",
                 root / "data/clips/synthetic_high.mp4", root / "report/index.html"]
    for path in generated:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"generated")
    subprocess.run(["make", "clean"], cwd=root, check=True, capture_output=True)
    assert not any(path.exists() for path in generated)
    assert run(root, "git", "status", "--porcelain").stdout == ""  # tracked files untouched
    assert (root / "models/tflite/.gitignore").is_file()


def test_the_wheel_ships_every_subpackage_and_its_cli_runs_outside_the_repo(tmp_path):
    """`pip install .` (not editable) installs this wheel: imported from it alone,
    every module of the source tree loads and the CLI answers."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("uvq_tflite-*.whl")
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for p in (REPO / "uvq_tflite").rglob("*.py") if p.name != "__main__.py")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.endswith(".py")}
    assert {m.replace(".", "/") for m in modules} <= {
        n.removesuffix(".py").removesuffix("/__init__") for n in shipped}
    check = ("import importlib, sys, uvq_tflite\n"
             f"assert uvq_tflite.__file__.startswith({str(wheel)!r}), uvq_tflite.__file__\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             "from uvq_tflite.cli import main\n"
             "sys.exit(main(['check-params', '--params', 'missing.yaml']))\n")
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(wheel)}, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]  # a usage error, not an import error
    assert "missing.yaml" in result.stderr


def test_make_setup_takes_torch_from_the_cpu_index_when_asked(tmp_path):
    index = "https://download.pytorch.org/whl/cpu"
    plain = subprocess.run(["make", "-n", "-B", "setup"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout
    cpu = subprocess.run(["make", "-n", "-B", "setup", f"TORCH_INDEX={index}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    (torch_line,) = [line for line in cpu.splitlines() if "torch==" in line]
    assert f"--index-url {index}" in torch_line and "-c constraints.txt" in torch_line
    assert "--index-url" not in plain


def test_every_package_the_code_imports_is_a_declared_dependency():
    declared = {re.split(r"[=<>\[ ]", d)[0].lower().replace("_", "-")
                for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
                    "dependencies"]}
    imported = set()
    for path in [*(REPO / "uvq_tflite").rglob("*.py"), *(REPO / "stages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"uvq_tflite", "__future__"}
    providers = importlib.metadata.packages_distributions()
    undeclared = {name: providers.get(name) for name in third_party
                  if not {d.lower() for d in providers.get(name, [])} & declared}
    assert third_party >= {"torch", "av", "psutil", "yaml", "ai_edge_quantizer"}
    assert not undeclared
