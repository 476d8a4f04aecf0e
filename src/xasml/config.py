"""Configuration files shared by every capability: reading TOML/JSON and merging onto defaults.

Each capability keeps its own defaults, descriptions and validation (``xasml.<capability>.config``);
this module holds what they share, so a config file behaves the same everywhere.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Collection

from xasml.errors import DataError


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a configuration file: TOML (``.toml``) or JSON (anything else).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        Its top-level table.

    Raises
    ------
    DataError
        If the file is missing, cannot be parsed (the parser's message, with line, is kept), or its
        top level is not a table/object.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: config file not found")
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib

            data = tomllib.loads(p.read_text())
        else:
            data = json.loads(p.read_text())
    except Exception as exc:  # noqa: BLE001 - TOML/JSON decoders raise several types; re-raised
        raise DataError(f"{p}: cannot parse config: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{p}: config must be a table/object at the top level")
    return data


def merge_config(base: dict[str, Any], over: dict[str, Any], where: str = "",
                 opaque: Collection[str] = ()) -> dict[str, Any]:
    """Return ``base`` updated by ``over``, recursively, refusing unknown options.

    Parameters
    ----------
    base : dict
        The defaults (every known option).
    over : dict
        Options to set; nested tables merge into nested tables.
    where : str
        Dotted prefix of ``base`` inside the whole config, for error messages.
    opaque : collection of str
        Top-level keys whose dict values are replaced whole rather than merged (free-form tables).

    Raises
    ------
    DataError
        If ``over`` names an option ``base`` does not have, or gives a scalar for a table.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{where}{k}"
        if k not in base:
            raise DataError(f"config: unknown option {key!r} (known: {', '.join(sorted(base))})")
        if isinstance(base[k], dict) and key not in opaque:
            if not isinstance(v, dict):
                raise DataError(f"config: option {key!r} must be a table/object")
            out[k] = merge_config(base[k], v, key + ".", opaque)
        else:
            out[k] = copy.deepcopy(v)
    return out
