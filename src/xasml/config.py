"""One configuration system for every capability: pydantic models read from TOML/JSON files.

A capability's options are a subclass of :class:`XasmlConfig` (``xasml.<capability>.config``):
each option is a field with its default and its one-line description (``Field(default,
description=...)``, the only place of its help text); nested tables are nested
:class:`XasmlConfig` models. The base gives every capability the same behaviour:

* :meth:`~XasmlConfig.from_file` reads TOML (``.toml``) or JSON (:func:`read_config_file`),
  :meth:`~XasmlConfig.from_dict` validates a dict, :meth:`~XasmlConfig.merged` applies a
  partial dict (nested tables merge, other values are replaced whole);
* unknown keys and wrong types are refused: every pydantic ``ValidationError`` becomes one line
  ``DataError("<file>: field 'section.option': <what is wrong>")``;
* :meth:`~XasmlConfig.to_dict` is the resolved configuration written into run folders and
  :meth:`~XasmlConfig.show` the text of ``--show-config`` (every option, its value, its
  description).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from xasml.errors import DataError

__all__ = ["XasmlConfig", "config_error", "element_symbol", "read_config_file"]


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


def element_symbol(value: str) -> str:
    """Canonical chemical symbol for a field validator (``"fe"`` -> ``"Fe"``): an unknown symbol
    raises ``ValueError``, which :func:`config_error` reports with the file and the field."""
    from xasml.errors import SpectrumError
    from xasml.spectrum import normalize_element

    try:
        return normalize_element(value)
    except SpectrumError:
        raise ValueError(f"unknown element {value!r}: expected a chemical symbol such as 'Cu'") from None


def _field_path(cls: type[BaseModel], loc: tuple) -> tuple[str, type[BaseModel] | None]:
    """Dotted option name of a pydantic error location, and the model that holds its last part.

    Union members and list indices that pydantic adds to ``loc`` (``'literal['a']'``, ``0``) are
    kept out of the name when they are not fields.
    """
    parts: list[str] = []
    model: type[BaseModel] | None = cls
    holder: type[BaseModel] | None = cls
    item_model: type[BaseModel] | None = None  # the model of the items of a list field (list[Model])
    for item in loc:
        if model is not None and isinstance(item, str) and item in model.model_fields:
            parts.append(item)
            holder = model
            ann = model.model_fields[item].annotation
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            args = [a for a in get_args(ann) if a is not type(None)]
            item_model = args[0] if get_origin(ann) is list and len(args) == 1 and isinstance(args[0], type) \
                and issubclass(args[0], BaseModel) else None
            continue
        if isinstance(item, int) and parts and item_model is not None:
            parts[-1] += f"[{item}]"
            model, item_model = item_model, None
            continue
        item_model = None
        if model is not None and isinstance(item, str) and parts[-1:] != [item]:
            parts.append(item)  # an unknown key
            holder = model
            model = None
        elif isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        elif isinstance(item, str) and model is None and not item.startswith(("literal[", "function-", "list[",
                                                                                "dict[", "union[")) \
                and item not in ("int", "float", "str", "bool", "none", "is-instance", "lax-or-strict"):
            parts.append(item)  # a key inside a free-form table
    return ".".join(parts) or "(top level)", holder


def config_error(exc: ValidationError, cls: type[BaseModel], source: str) -> DataError:
    """One line naming the file, the option and what is wrong, for the first error of ``exc``."""
    err = exc.errors()[0]
    name, holder = _field_path(cls, tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        known = ", ".join(sorted(holder.model_fields)) if holder is not None else ""
        msg = f"unknown option (known: {known})" if known else "unknown option"
    else:
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] not in ("value_error", "assertion_error") and "input" in err \
                and not isinstance(err["input"], (dict, list)):
            msg += f", got {json.dumps(err['input'], default=str)}"
    m = re.match(r"^([\w.\[\]-]+): (.*)$", msg, re.DOTALL) if err["type"] == "value_error" else None
    if m:  # a model validator names its option first ("option: message"), relative to its own section
        ident, msg = m.groups()
        name = ident if name == "(top level)" or ident.startswith(name + ".") else f"{name}.{ident}"
    more = len(exc.errors()) - 1
    return DataError(f"{source}: field {name!r}: {msg}" + (f" (and {more} more)" if more > 0 else ""))


class XasmlConfig(BaseModel):
    """Base of every capability's configuration (see the module docstring).

    Subclasses declare options as fields with ``Field(default, description=...)`` and nested
    tables as fields whose type is another :class:`XasmlConfig`.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config"):
        """Validate a (possibly partial) dict onto the defaults.

        Raises
        ------
        DataError
            ``"<source>: field 'section.option': <message>"`` for an unknown key, a wrong type
            or a value out of range.
        """
        if not isinstance(data, dict):
            raise DataError(f"{source}: config must be a table/object at the top level")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, cls, source) from None

    @classmethod
    def from_file(cls, path: str | Path):
        """Read and validate a TOML (``.toml``) or JSON file (errors name the file and the field)."""
        return cls.from_dict(read_config_file(path), str(path))

    @classmethod
    def defaults(cls):
        """Every option at its default."""
        return cls()

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as JSON-ready nested dicts (written to run folders)."""
        return self.model_dump(mode="json")

    def merged(self, over: dict[str, Any] | None, source: str = "config"):
        """A new config: this one with ``over`` applied (nested tables merge; other values,
        free-form tables included, are replaced whole). Errors as :meth:`from_dict`."""
        if not over:
            return self.model_copy(deep=True)
        if not isinstance(over, dict):
            raise DataError(f"{source}: config must be a table/object at the top level")
        return type(self).from_dict(_merge_into(type(self), self.to_dict(), over), source)

    @classmethod
    def descriptions(cls, prefix: str = "") -> dict[str, str]:
        """``{"section.option": description}`` of every option (nested tables walked)."""
        out: dict[str, str] = {}
        for name, f in cls.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, XasmlConfig):
                out.update(ann.descriptions(prefix + name + "."))
            else:
                out[prefix + name] = f.description or ""
        return out

    def show(self) -> str:
        """``--show-config``: one line ``section.option = <JSON value>    # description`` per option."""
        values = self.to_dict()
        lines = []
        for key, desc in self.descriptions().items():
            v: Any = values
            for part in key.split("."):
                v = v[part]
            lines.append(f"{key} = {json.dumps(v)}    # {desc}")
        return "\n".join(lines)


def _merge_into(cls: type[BaseModel], base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a full dict of ``cls``) updated by ``over``: sub-model tables merge recursively;
    unknown keys are passed on for pydantic to refuse (with the file and field named)."""
    out = dict(base)
    for k, v in over.items():
        f = cls.model_fields.get(k)
        ann = f.annotation if f is not None else None
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(v, dict) and isinstance(base.get(k), dict):
            out[k] = _merge_into(ann, base[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
