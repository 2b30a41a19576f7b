"""The build around the library: make targets and packaging."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from pipeline_helpers import BIN, copy_project, run

from uvq_tflite.core.registry import MODELS, network
from uvq_tflite.report import resolved_plots


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
    source = copy_project(tmp_path / "source")  # setuptools builds in the source tree
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)],
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


@pytest.mark.parametrize("venv", [".venv", "/elsewhere/venv"])
def test_stage_commands_run_the_venvs_python_wherever_it_lives(venv):
    """Stages call `python`: the venv's bin leads PATH, relative or absolute VENV alike."""
    bin_dir = os.path.abspath(os.path.join(REPO, venv, "bin"))
    for target, command in (("repro", "dvc repro"), ("verify", "gate"), ("report", "report"),
                            ("bench", "uvq_tflite.bench")):
        dry = subprocess.run(["make", "-n", "-o", f"{venv}/.installed", target, f"VENV={venv}"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
        (line,) = [line for line in dry.splitlines() if command in line]
        assert line.startswith(f'PATH="{bin_dir}:'), line


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


def test_a_stage_refuses_to_run_on_tools_its_outputs_would_not_be_keyed_on(tmp_path):
    root = copy_project(tmp_path / "project")
    path = root / "toolchain.yaml"
    path.write_text(path.read_text().replace("litert-torch: ", "litert-torch: 0.0.1-was-"))
    result = run(root, sys.executable, "stages/quantize.py", "in.tflite", "out.tflite",
                 check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "toolchain.yaml records 0.0.1-was-" in result.stderr
    assert not (root / "out.tflite").exists()
    assert "up to date" not in run(root, str(BIN / "uvq-tflite"), "toolchain").stderr
    after = run(root, sys.executable, "stages/quantize.py", "in.tflite", "out.tflite", check=False)
    assert "toolchain.yaml" not in after.stderr and "in.tflite: no such file" in after.stderr


def test_dvc_yaml_params_and_the_registry_name_the_same_networks():
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    nets = next(v["nets"] for v in dvc_yaml["vars"] if "nets" in v)
    assert tuple(nets) == MODELS
    for name, entry in nets.items():
        assert (entry["network"], entry["wrapper"]) == network(name).sources
        assert all((REPO / path).is_file() for path in network(name).sources)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section in (params["checkpoints"], params["models"], params["verification"]["samples"]):
        assert tuple(section) == MODELS
    for name in MODELS:
        assert params["models"][name]["inputs"] == [list(s) for s in network(name).input_shapes(1)]


def test_a_broken_backbone_never_stops_the_aggregation_stages(tmp_path):
    """A stage for one network imports no other network's code."""
    root = copy_project(tmp_path / "project")
    (root / network("content").sources[0]).write_text("this is not python (\n")
    (root / "models/tflite").mkdir(parents=True, exist_ok=True)
    for stage in (["demo_checkpoint.py", "aggregation", "models/demo/aggregation_net.pth"],
                  ["convert.py", "aggregation", "models/demo/aggregation_net.pth",
                   "models/tflite/aggregation_net.tflite"],
                  ["quantize.py", "models/tflite/aggregation_net.tflite",
                   "models/tflite/aggregation_net_int8.tflite"]):
        result = run(root, sys.executable, f"stages/{stage[0]}", *stage[1:], check=False,
                     timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (root / "models/tflite/aggregation_net_int8.tflite").stat().st_size > 0
    broken = run(root, sys.executable, "stages/demo_checkpoint.py", "content",
                 "models/demo/content_net.pth", check=False)
    assert broken.returncode != 0  # the break is real


def test_the_report_draws_every_plot_with_no_network_and_no_script(tmp_path):
    out = tmp_path / "index.html"
    offline = ["unshare", "-n"]  # no network at all, where the kernel lets us
    if not shutil.which("unshare") or subprocess.run([*offline, "true"]).returncode != 0:
        offline = []
    result = subprocess.run([*offline, str(BIN / "uvq-tflite"), "report", "--output", str(out),
                             "--against", "none"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
                                              "DVC_NO_ANALYTICS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    page = out.read_text()
    assert "<script" not in page and "src=" not in page
    figures = page.split("<figure>")[1:]
    titles = [f.split("<figcaption>")[1].split(" <small>")[0] for f in figures]
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    named = [next(iter(p)) if isinstance(p, dict) else p for p in plots]
    videos = yaml.safe_load((REPO / "params.yaml").read_text())["videos"]
    expected = [n for n in named if not n.endswith("videos")] + [
        f"metrics/plots/videos/{clip}.json" for clip in videos]
    assert sorted(titles) == sorted(expected)
    assert all(f.count("<svg") == 1 and f.count("<path") >= 10 for f in figures)


def test_every_plot_colours_its_series_and_marks_the_revision_apart(monkeypatch):
    # DVC's own templates colour by revision: one colour for every precision in a report
    # of the workspace alone. The .dvc/plots templates colour by series.
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    for title, entries in resolved_plots(None).items():
        encoding = entries[0]["content"]["encoding"]
        assert encoding["color"]["field"] == "field", title
        assert {encoding.get("strokeDash", {}).get("field"),
                encoding.get("shape", {}).get("field")} >= {"rev"}, title


def test_the_report_outside_the_checkout_says_where_to_run_it(tmp_path, monkeypatch, capsys):
    from uvq_tflite.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["report", "--output", "r.html"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"uvq-tflite: error: {tmp_path}: no dvc.yaml here; run `uvq-tflite report` at the root "
        f"of the uvq-tflite checkout")
    assert not (tmp_path / "r.html").exists()


def test_the_bench_notes_uncommitted_changes_but_not_its_own_results(tmp_path):
    from uvq_tflite.bench import OUT_DIR, uncommitted

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t",
                        "-c", "commit.gpgsign=false", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / OUT_DIR).mkdir()
    for name in (OUT_DIR / "latency.json", Path("params.yaml")):
        (tmp_path / name).write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    assert not uncommitted(tmp_path)
    (tmp_path / OUT_DIR / "latency.json").write_text('{"new": 1}\n')
    assert not uncommitted(tmp_path)
    (tmp_path / "params.yaml").write_text("changed: true\n")
    assert uncommitted(tmp_path)


def test_the_bench_records_the_cpu_it_ran_on(tmp_path):
    from uvq_tflite.bench import machine

    cpuinfo = tmp_path / "cpuinfo"
    core = "model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma {}\n\n"
    cpuinfo.write_text(core.format("avx512f") + core.format(""))
    facts = machine(cpuinfo)
    assert (facts["cpu_model"], facts["cpu_isa"]) == ("AMD EPYC", ["avx", "avx2", "fma", "avx512f"])
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")  # ARM: no flags, no model
    facts = machine(cpuinfo)
    assert (facts["cpu_model"], facts["cpu_isa"]) == (None, None)
    assert machine(tmp_path / "missing")["cpu_isa"] is None
