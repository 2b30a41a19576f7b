"""Exceptions the CLI turns into one line on stderr and exit code 2."""


class UserInputError(Exception):
    """Bad input from the user: a path, a file, a flag or a parameter."""


class CheckpointError(UserInputError):
    """A checkpoint that is missing, unreadable or of the wrong network."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
