"""Loaded by every Python process when tests/tracer is on PYTHONPATH: with
UVQ_TRACE_DIR set, records which files the process imported and opened, so a test
can check each DVC stage's deps against what its process actually read."""

import atexit
import json
import os
import sys

_TRACE_DIR = os.environ.get("UVQ_TRACE_DIR")

if _TRACE_DIR:
    _opened: set[str] = set()

    _WRITES = os.O_WRONLY | os.O_RDWR

    def _audit(event, args):
        # ("open", (path, mode, flags)): reads only; a stage's own outputs are written
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            mode, flags = args[1], args[2]
            writing = (any(c in mode for c in "wax+") if isinstance(mode, str)
                       else bool(flags & _WRITES))
            if not writing:
                _opened.add(os.path.abspath(os.fsdecode(args[0])))

    def _write():
        modules = {os.path.abspath(m.__file__) for m in list(sys.modules.values())
                   if isinstance(getattr(m, "__file__", None), str)}
        record = {"argv": sys.argv, "cwd": os.getcwd(), "files": sorted(modules | _opened)}
        with open(os.path.join(_TRACE_DIR, f"{os.getpid()}.json"), "w") as out:
            json.dump(record, out)

    sys.addaudithook(_audit)
    atexit.register(_write)
