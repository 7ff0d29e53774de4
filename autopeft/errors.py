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
        # Keep the message on one line whatever the caller passed, and bounded: a value
        # quoted whole (a path, a name from the command line) must not flood the terminal.
        super().__init__(excerpt(" ".join(str(message).split()), MAX_MESSAGE, quote=False))


class NeedsWeights(AutopeftError):
    """A method cannot be applied to a weightless (meta) model: its initialisation reads the
    weights. Not the user's fault when a search checks placements on a meta model."""


class MethodNotApplicable(AutopeftError):
    """A PEFT method cannot be applied to a model (e.g. BitFit on T5, which has no biases)."""


# Longest message (a safety net: values are quoted as excerpts where they are written).
MAX_MESSAGE = 1000
# Longest quoted user value in a message: a value may be a whole expanded YAML document.
EXCERPT_CHARS = 60


def excerpt(value: object, limit: int = EXCERPT_CHARS, *, quote: bool = True) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for quoting user input in a message.

    Every message that quotes a value the user gave goes through here, so that a huge value
    (a YAML alias bomb, a 50 kB list) costs one short line, not the whole value. The repr of
    nested containers is built lazily through :mod:`reprlib`, which never expands more than it
    shows. ``quote=False`` cuts a string as it is (a key path, a name), without quotes.
    """
    import reprlib

    if not quote and isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict = 3, 6, 6, 4
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
