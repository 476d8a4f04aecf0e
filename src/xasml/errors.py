"""Exception types shared by the whole package."""

from __future__ import annotations


class XasmlError(Exception):
    """Base class of every error xasml raises on purpose."""


class SpectrumError(XasmlError, ValueError):
    """A spectrum or a spectrum file is invalid.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    source : str or None
        The file (or other origin) the spectrum came from.
    line : int or None
        1-based line number in ``source`` where the problem was found.
    field : str or None
        The field or column that is wrong (e.g. ``"energy"``, ``"Element.symbol"``).
    """

    def __init__(self, message: str, source: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class DataError(XasmlError, ValueError):
    """A dataset, catalogue or configuration file is invalid (names the file and the field)."""


class MissingExtraError(XasmlError, ImportError):
    """An optional dependency is missing; the message names the pip extra that provides it."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed; install it with: pip install 'xasml[{extra}]'")


def file_message(file, message) -> str:
    """A message about a file, naming it once: ``FILE: message``.

    Parameters
    ----------
    file : str or Path
        The file the message is about.
    message : str or Exception
        The message (an exception's text); left as it is when it already starts with ``file``.

    Returns
    -------
    str
        ``"FILE: message"``, or ``message`` when it already names the file first.
    """
    message = str(message)
    return message if message.startswith(str(file)) else f"{file}: {message}"


def file_error_line(file, message) -> str:
    """The one-line error of a command that goes on with its other files:
    ``xasml: error: FILE: message`` (the file named once, :func:`file_message`)."""
    return f"xasml: error: {file_message(file, message)}"
