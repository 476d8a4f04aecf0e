"""Lazy package exports (PEP 562 module ``__getattr__``), shared by the package ``__init__`` files.

A package that re-exports names from its submodules imports them on first access instead of at
``import``, so importing one submodule does not import the heavy siblings (pandas, pydantic,
scikit-learn). Submodules stay reachable as attributes (``xasml.io.xdi``), as when the package
imported them all.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package`` that import its exports on first use.

    Parameters
    ----------
    package : str
        Dotted name of the package (its ``__name__``), e.g. ``"xasml.io"``.
    exports : mapping of str to str
        Public name -> name of the submodule of ``package`` that defines it (``{"read_xdi": "xdi"}``).

    Returns
    -------
    __getattr__ : callable
        ``__getattr__(name)`` returns the exported ``name`` (imported from its submodule and cached in
        the package namespace), else the submodule ``package.name``.
    __dir__ : callable
        ``__dir__()`` lists the package namespace and the exported names.

    Raises
    ------
    AttributeError
        From ``__getattr__``, for a name that is neither an export nor a submodule (or starts with ``_``).

    Notes
    -----
    PEP 562, "Module __getattr__ and __dir__".
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
