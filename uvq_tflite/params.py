"""params.yaml: loading and validation before any work is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from uvq_tflite.deploy import MODELS, PRECISIONS, spec
from uvq_tflite.errors import UserInputError
from uvq_tflite.quantize import RECIPES

PARAMS_FILE = Path("params.yaml")
SECTIONS = ("checkpoints", "models", "quantization", "verification", "scoring", "thresholds")


class ParamsError(UserInputError):
    """params.yaml has problems; the message lists each on its own line."""


def demo_checkpoint_path(model: str) -> Path:
    """Where the demo_checkpoint stage writes a model's demo checkpoint."""
    return Path("models/demo") / f"{spec(model).file_stem}.pth"


def _is_int(value: Any, low: int, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _is_number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _builtin_ops() -> set[str]:
    from ai_edge_litert import schema_py_generated as schema

    return {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}


def _check_keys(problems: list[str], where: str, section: Any, valid: tuple[str, ...],
                required: bool = True) -> dict:
    if not isinstance(section, dict):
        problems.append(f"{where}: expected a mapping with keys {', '.join(valid)}")
        return {}
    for key in section:
        if key not in valid:
            problems.append(f"{where}.{key}: unknown key; valid: {', '.join(valid)}")
    if required:
        for key in valid:
            if key not in section:
                problems.append(f"{where}.{key}: missing")
    return section


def _checkpoints(problems: list[str], section: dict, root: Path) -> None:
    for model, path in _check_keys(problems, "checkpoints", section, MODELS).items():
        if model not in MODELS:
            continue
        if not isinstance(path, str) or not path:
            problems.append(f"checkpoints.{model}: expected a file path, got {path!r}")
        elif not (root / path).is_file() and Path(path) != demo_checkpoint_path(model):
            problems.append(f"checkpoints.{model}: {path} does not exist")


def _models(problems: list[str], section: dict) -> None:
    for model, entry in _check_keys(problems, "models", section, MODELS).items():
        if model not in MODELS:
            continue
        entry = _check_keys(problems, f"models.{model}", entry, ("inputs",))
        if "inputs" in entry and not spec(model).frames_per_call(entry["inputs"]):
            shapes = [list(s) for s in spec(model).input_shapes(1)]
            problems.append(f"models.{model}.inputs: {entry['inputs']!r} is not an input of "
                            f"the {model} network; expected {shapes} with the first "
                            f"dimension times F frames per call (F >= 1)")


def _leaf(problems: list[str], where: str, value: Any, ok: Callable[[Any], bool],
          expected: str) -> None:
    if not ok(value):
        problems.append(f"{where}: {value!r} is invalid; expected {expected}")


def _quantization(problems: list[str], section: dict) -> None:
    section = _check_keys(problems, "quantization", section, ("recipe",))
    if "recipe" in section:
        _leaf(problems, "quantization.recipe", section["recipe"], lambda v: v in RECIPES,
              f"one of {', '.join(RECIPES)}")


def _verification(problems: list[str], section: dict) -> None:
    section = _check_keys(problems, "verification", section, ("samples", "seed", "threads"))
    checks = {"seed": (lambda v: _is_int(v, 0), "an integer >= 0"),
              "threads": (lambda v: _is_int(v, 1, 64), "an integer from 1 to 64")}
    for key, value in section.items():
        if key in checks:
            _leaf(problems, f"verification.{key}", value, *checks[key])
    if "samples" in section:
        samples = _check_keys(problems, "verification.samples", section["samples"], MODELS)
        for model, value in samples.items():
            if model in MODELS:
                _leaf(problems, f"verification.samples.{model}", value,
                      lambda v: _is_int(v, 1, 10000), "an integer from 1 to 10000")


def _scoring(problems: list[str], section: dict) -> None:
    section = _check_keys(problems, "scoring", section, ("frames", "seed"))
    checks = {"frames": (lambda v: _is_int(v, 1, 1000), "an integer from 1 to 1000"),
              "seed": (lambda v: _is_int(v, 0), "an integer >= 0")}
    for key, value in section.items():
        if key in checks:
            _leaf(problems, f"scoring.{key}", value, *checks[key])


PRECISION_BOUNDS = {
    "min_correlation": (lambda v: _is_number(v, -1.0, 1.0), "a number from -1 to 1"),
    "max_score_rel_diff": (lambda v: _is_number(v, 0.0, 10.0), "a number from 0 to 10"),
}


def _thresholds(problems: list[str], section: dict) -> None:
    section = _check_keys(problems, "thresholds", section,
                          (*PRECISIONS, "max_rank", "forbidden_ops"))
    for precision in PRECISIONS:
        bounds = _check_keys(problems, f"thresholds.{precision}", section.get(precision, {}),
                             tuple(PRECISION_BOUNDS)) if precision in section else {}
        for key, value in bounds.items():
            if key in PRECISION_BOUNDS:
                _leaf(problems, f"thresholds.{precision}.{key}", value, *PRECISION_BOUNDS[key])
    if "max_rank" in section:
        _leaf(problems, "thresholds.max_rank", section["max_rank"], lambda v: _is_int(v, 1, 8),
              "an integer from 1 to 8")
    if "forbidden_ops" in section:
        ops = section["forbidden_ops"]
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            problems.append("thresholds.forbidden_ops: expected a list of TFLite builtin "
                            "operator names such as GATHER_ND")
        else:
            known = _builtin_ops()
            for op in ops:
                if op not in known:
                    problems.append(f"thresholds.forbidden_ops: {op!r} is not a TFLite "
                                    f"builtin operator (e.g. GATHER, GATHER_ND, TRANSPOSE)")


VALIDATORS = {
    "models": _models,
    "quantization": _quantization,
    "verification": _verification,
    "scoring": _scoring,
    "thresholds": _thresholds,
}


def load_params(path: str | Path = PARAMS_FILE, sections: tuple[str, ...] = SECTIONS) -> dict:
    """params.yaml with `sections` validated; ParamsError lists every problem found."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    problems: list[str] = []
    params = _check_keys(problems, path.name, params, SECTIONS)
    for name, section in params.items():
        if name not in sections:
            continue
        if name == "checkpoints":
            _checkpoints(problems, section, path.parent)
        elif name in VALIDATORS:
            VALIDATORS[name](problems, section)
    if problems:
        raise ParamsError("\n".join(f"{path}: {p}" for p in problems))
    return params
