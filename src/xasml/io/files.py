"""Reading the bytes of a text data file, with the errors every reader gives the same way."""

from __future__ import annotations

from pathlib import Path

from xasml.errors import SpectrumError

__all__ = ["read_file_bytes", "decode_text"]


def read_file_bytes(path: str | Path, expected: str) -> bytes:
    """The bytes of ``path``.

    Parameters
    ----------
    path : str or Path
        The file.
    expected : str
        What the file should be, for the messages (``"an XDI file"``).

    Raises
    ------
    SpectrumError
        Naming the file: missing, or a directory.
    """
    src = str(path)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SpectrumError("file not found", source=src) from None
    except IsADirectoryError:
        raise SpectrumError(f"is a directory, expected {expected}", source=src) from None


def decode_text(raw: bytes, source: str, expected: str) -> str:
    """UTF-8 text of ``raw`` (undecodable bytes replaced), refusing binary data (NUL in the first 4 kB).

    Raises
    ------
    SpectrumError
        Naming ``source``, for binary data.
    """
    if b"\0" in raw[:4096]:
        raise SpectrumError(f"binary file, expected {expected}", source=source)
    return raw.decode("utf-8", errors="replace")
