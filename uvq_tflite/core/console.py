"""What every command and stage shares with its user: stderr lines, progress and exit codes."""

from __future__ import annotations

import sys
import time

EXIT_OK, EXIT_BREACH, EXIT_USAGE = 0, 1, 2  # success, verification breach, bad input
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def log(message: str) -> None:
    """One line of progress or error on stderr."""
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Progress of a long step on stderr: a bar redrawn in place on a terminal,
    otherwise (logs, DVC, CI) one line at most every `interval` seconds and one at the end."""

    BAR = 30

    def __init__(self, label: str, total: int, unit: str, interval: float = 10.0):
        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self.done = 0
        self.started = self._shown = time.monotonic()
        self.tty = sys.stderr.isatty()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty:
            filled = self.BAR * self.done // max(self.total, 1)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.BAR - filled)}] "
                             f"{self.done}/{self.total} {self.unit}")
            sys.stderr.flush()
        elif now - self._shown >= self.interval and self.done < self.total:
            self._shown = now
            log(f"{self.label}: {self.done}/{self.total} {self.unit}")

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        log(f"{self.label}: {self.done}/{self.total} {self.unit} "
            f"in {time.monotonic() - self.started:.1f} s")
