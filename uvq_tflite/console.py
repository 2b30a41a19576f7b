"""What every command and stage shares with its user: stderr lines and exit codes."""

from __future__ import annotations

import sys

EXIT_OK, EXIT_BREACH, EXIT_USAGE = 0, 1, 2  # success, verification breach, bad input


def log(message: str) -> None:
    """One line of progress or error on stderr."""
    print(message, file=sys.stderr, flush=True)
