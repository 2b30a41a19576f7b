"""Writing outputs so that an interrupted run never leaves a partial file behind.

Each write goes to a temporary file of its own beside the output, then is
renamed over it, so concurrent writers never see or remove each other's data and
the last complete write wins. A temporary file is named after its output, this
project and the writing process (`.<name>.uvq-tflite.<pid>.<random>.tmp`); one
left by a killed writer is removed by the next write of the same output, and
only once that process is gone. Outputs get the usual permissions (0666 less
the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from uvq_tflite.core.errors import UserInputError

TAG = "uvq-tflite"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of `path` whose writer no longer runs, recognised by exact name."""
    pattern = re.compile(re.escape(f".{path.name}.{TAG}.") + r"(\d+)\.[A-Za-z0-9_]{8}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and int(match[1]) != os.getpid() and not _alive(int(match[1])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_dir(directory: str | Path) -> None:
    """UserInputError unless `directory` exists as a writable folder or can be made one;
    checked before work whose output would go there."""
    directory = Path(directory)
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    where = "" if existing == directory else f"{existing} is "
    if existing.exists() and not existing.is_dir():
        raise UserInputError(f"{directory}: {where}a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or _read_only_fs(existing):
        raise UserInputError(f"{directory}: {where}not writable")


def check_writable_file(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """UserInputError unless `path` can be written as a file (not a folder, nor a name
    ending in a separator, `.` or `..`) in a folder that is writable or can be made,
    and is none of the work's `inputs`; checked before the work whose output it is."""
    text = os.fspath(path)
    if not text:
        raise UserInputError("an empty output path; give the file to write")
    if Path(text).is_dir():
        raise UserInputError(f"{text}: a folder; give the file to write")
    if text.endswith(os.sep) or os.path.basename(text) in (".", ".."):
        raise UserInputError(f"{text}: not a file name; give the file to write")
    if any(Path(text).resolve() == Path(source).resolve() for source in inputs):
        raise UserInputError(f"{text}: also an input of this command; write the output elsewhere")
    check_writable_dir(Path(text).parent)


def _read_only_fs(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write via a temporary file of this process in the same directory, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TAG}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data) -> None:
    """Indented strict JSON (no NaN or Infinity), written atomically."""
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
                 .encode())


def visible_files(directory: Path) -> list[Path]:
    """The files of `directory` that are not hidden, in name order (a calibration
    folder's clips)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
