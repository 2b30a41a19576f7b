"""Entry point shared by the scripts in stages/: arguments, validated params, exit codes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from uvq_tflite.core import toolchain
from uvq_tflite.core.console import EXIT_INTERRUPTED, EXIT_USAGE, log
from uvq_tflite.core.errors import UserInputError
from uvq_tflite.core.files import check_writable_dir
from uvq_tflite.core.params import load_params

# Argument names that are paths a stage writes; their folders are checked first.
OUTPUTS = ("output", "metrics", "per_frame", "plot", "layers")


def run_stage(main: Callable[[argparse.Namespace, dict], None], doc: str, *arguments: str,
              reads: tuple[str, ...] = ()) -> None:
    """Parse positional `arguments`, check the installed tools against toolchain.yaml,
    validate the params.yaml sections the stage `reads`, run `main`; exit 2 on bad input."""
    parser = argparse.ArgumentParser(description=doc)
    for name in arguments:
        parser.add_argument(name)
    args = parser.parse_args()
    started = time.monotonic()
    try:
        toolchain.check()  # outputs keyed on recorded tool versions are made by those tools
        for name in OUTPUTS:  # before the work, not after it
            if name in arguments:
                check_writable_dir(Path(getattr(args, name)).parent)
        main(args, load_params(sections=reads))
    except UserInputError as exc:
        for line in str(exc).splitlines():
            log(f"error: {line}")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:  # Ctrl-C: write_atomic leaves no partial output
        log("error: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    log(f"{parser.prog} {' '.join(sys.argv[1:])}: done in {time.monotonic() - started:.1f} s")
