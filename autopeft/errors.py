"""User-facing errors.

Anything a user can fix (bad flag, unknown task, unreachable database, ...) is raised as
:class:`AutopeftError` with a one-line message that names the problem and the fix. The CLI
prints it as ``autopeft: error: <message>`` and exits with code 2, without a traceback.
"""

from __future__ import annotations


class AutopeftError(Exception):
    """An error caused by user input or environment, reported in one line (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep the message on one line whatever the caller passed.
        super().__init__(" ".join(str(message).split()))


class MethodNotApplicable(AutopeftError):
    """A PEFT method cannot be applied to a model (e.g. BitFit on T5, which has no biases)."""
