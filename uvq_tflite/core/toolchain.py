"""The tools whose versions shape output bytes, recorded where DVC sees them.

`toolchain.yaml` (committed; `uvq-tflite toolchain` writes it, `make repro` runs
that first) holds the installed version of each tool, by group. Each stage
declares the groups it uses as DVC params, so upgrading the converter reconverts,
upgrading the quantizer re-quantizes without reconverting, and nothing else
moves. Every stage refuses to run while the installed versions differ from the
file: its outputs would be keyed on versions that did not make them.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import yaml

from uvq_tflite.core.errors import UserInputError

TOOLCHAIN_FILE = Path("toolchain.yaml")
GROUPS = {
    "torch": ("torch",),  # checkpoints and the PyTorch reference
    "converter": ("litert-torch",),  # PyTorch -> float32 .tflite
    "quantizer": ("ai-edge-quantizer",),  # float32 -> int8 and full_int8
    "runtime": ("ai-edge-litert", "numpy"),  # running .tflite files, every array
    "video": ("av",),  # decoding and encoding clips (FFmpeg inside)
}
HEADER = ("# The installed versions of the tools that shape output bytes, by group; stages\n"
          "# declare the groups they use as DVC params. Written by `uvq-tflite toolchain`\n"
          "# (make repro runs it); do not edit by hand.\n")


def installed() -> dict[str, dict[str, str]]:
    """{group: {distribution: installed version}} for GROUPS."""
    return {group: {name: importlib.metadata.version(name) for name in names}
            for group, names in GROUPS.items()}


def recorded(path: Path = TOOLCHAIN_FILE) -> dict | None:
    """What `path` records, or None if it does not exist."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def write(path: Path = TOOLCHAIN_FILE) -> bool:
    """Record the installed versions in `path`; True if that changed the file."""
    text = HEADER + yaml.safe_dump(installed(), sort_keys=False)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def check(path: Path = TOOLCHAIN_FILE) -> None:
    """UserInputError, one line per tool, if what is installed differs from `path`."""
    theirs = recorded(path)
    if theirs is None:
        raise UserInputError(f"{path}: no such file; run `uvq-tflite toolchain` to write it")
    theirs = theirs if isinstance(theirs, dict) else {}
    problems = []
    for group, versions in installed().items():
        had = theirs.get(group) if isinstance(theirs.get(group), dict) else {}
        problems += [f"{name} {version} is installed but {path} records "
                     f"{had.get(name) or 'no version'}"
                     for name, version in versions.items() if had.get(name) != version]
    if problems:
        raise UserInputError("\n".join(
            [*problems, "run `uvq-tflite toolchain` (make repro does) to record the installed "
                        "tools; the stages that use them then rerun"]))
