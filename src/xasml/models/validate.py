"""Checked loading of saved model folders (``estimator.json`` + ``weights.safetensors``).

:func:`xasml.models.base.load_estimator` trusts the folder; a model folder that was edited,
truncated or corrupted then fails deep inside torch or, worse, predicts NaN. Every command that
loads a model (``forward predict``, ``local predict``, ``topology predict``) goes through
:func:`load_checked_estimator`, which checks before and after restoring:

* ``estimator.json`` is JSON with the schema ``{"model": str, "class": str, "params": {...},
  "state": {...}}``; numbers in ``state`` are finite, ``n_features_in``/``n_outputs`` positive
  integers, a ``threshold`` lies in [0, 1];
* ``weights.safetensors`` is readable and every floating-point tensor is finite;
* restoring the estimator succeeds (shape mismatches between the JSON and the weights are
  reported as such, naming the folder).

Every failure is a :class:`~xasml.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from xasml.errors import DataError, XasmlError

__all__ = ["EstimatorFile", "check_estimator_folder", "load_checked_estimator", "check_weights", "check_finite_values"]


class EstimatorFile(BaseModel):
    """Schema of ``estimator.json`` (written by :meth:`xasml.models.base.XasmlEstimator.save`)."""

    model_config = ConfigDict(extra="allow", strict=True)  # newer writers may add fields

    model: str
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    # ``class`` is a Python keyword: accepted through the alias
    class_: str | None = None

    @classmethod
    def parse(cls, obj: Any) -> "EstimatorFile":
        """Validate a parsed ``estimator.json``.

        Parameters
        ----------
        obj : Any
            The parsed JSON.

        Returns
        -------
        EstimatorFile

        Raises
        ------
        pydantic.ValidationError
            If a required field is missing or a field has the wrong type.
        """
        if isinstance(obj, dict) and "class" in obj:
            obj = {("class_" if k == "class" else k): v for k, v in obj.items()}
        return cls.model_validate(obj)


def check_finite_values(obj: Any, where: str, field: str = "state") -> None:
    """Raise :class:`DataError` if a number anywhere in ``obj`` (nested dicts/lists) is NaN or infinite.

    Parameters
    ----------
    obj : Any
        Parsed JSON.
    where : str
        The file, for the message.
    field : str
        Dotted path of ``obj`` in the file.

    Raises
    ------
    DataError
        Naming the file and the field.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise DataError(f"{where}: field {field!r} is {obj}; expected a finite number")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_finite_values(v, where, f"{field}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_finite_values(v, where, f"{field}[{i}]")


def check_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``weights.safetensors`` and check every floating-point tensor is finite.

    Parameters
    ----------
    path : str or Path
        The weights file.

    Returns
    -------
    dict of str to ndarray
        The tensors.

    Raises
    ------
    DataError
        If the file cannot be read as safetensors or a tensor holds NaN or infinity (named).
    """
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types on corrupt headers
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the weights ({msg}); expected a safetensors file written by "
                        "xasml (retrain or restore the model folder)") from None
    for name, a in arrays.items():
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            n_bad = int((~np.isfinite(a)).sum())
            raise DataError(f"{path}: tensor {name!r} holds {n_bad} non-finite value(s) (NaN or infinity); "
                            "expected finite weights (the model folder is corrupt)")
    return arrays


def read_model_json(path: Path, what: str = "JSON") -> Any:
    """The JSON object of a model-folder file; every decoding problem is one :class:`DataError`
    naming the file (not UTF-8, invalid JSON with line and column, nesting too deep, numbers too
    long), for all model folders alike.

    Parameters
    ----------
    path : Path
        The file (``estimator.json``, ``forward.json``, ``bundle.json``, ``topology.json``, ...).
    what : str
        What the file should be, for the message (``"the bundle.json"``).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected {what} written by xasml") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); expected "
                        f"{what} written by xasml") from None
    except (RecursionError, ValueError) as exc:
        raise DataError(f"{path}: invalid JSON ({type(exc).__name__}); expected {what} written by xasml") from None


def check_estimator_folder(path: str | Path) -> tuple[EstimatorFile, dict[str, np.ndarray]]:
    """Check a saved estimator folder's files (see the module docstring) without restoring the estimator.

    Parameters
    ----------
    path : str or Path
        Folder with ``estimator.json`` and (for most models) ``weights.safetensors``.

    Returns
    -------
    (EstimatorFile, dict of str to ndarray)
        The validated ``estimator.json`` and the weights (empty without ``weights.safetensors``).

    Raises
    ------
    DataError
        Naming the file: missing ``estimator.json``, invalid JSON or schema, non-finite
        numbers, unreadable or non-finite weights.
    """
    path = Path(path)
    meta_path = path / "estimator.json"
    if not meta_path.is_file():
        raise DataError(f"{path}: not a saved model (no estimator.json)")
    obj = read_model_json(meta_path)
    try:
        meta = EstimatorFile.parse(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]).replace("class_", "class") or "(top level)"
        raise DataError(f"{meta_path}: field {loc!r}: {err['msg']}; expected {{\"model\": str, \"class\": str, "
                        "\"params\": {...}, \"state\": {...}}") from None
    check_finite_values(meta.state, str(meta_path), "state")
    check_finite_values(meta.params, str(meta_path), "params")
    for key in ("n_features_in", "n_outputs", "n_members", "n_fitted_members"):
        v = meta.state.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise DataError(f"{meta_path}: field 'state.{key}' is {v!r}; expected a positive integer")
    thr = meta.state.get("threshold")
    if thr is not None and (isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1):
        raise DataError(f"{meta_path}: field 'state.threshold' is {thr!r}; expected a probability in [0, 1]")
    weights = path / "weights.safetensors"
    return meta, (check_weights(weights) if weights.exists() else {})


def load_checked_estimator(path: str | Path):
    """Load an estimator folder after checking its files (see the module docstring).

    Parameters
    ----------
    path : str or Path
        Folder with ``estimator.json`` and (for most models) ``weights.safetensors``.

    Returns
    -------
    XasmlEstimator
        The restored, fitted estimator.

    Raises
    ------
    DataError
        Naming the file: missing ``estimator.json``, invalid JSON or schema, non-finite
        numbers, unreadable or non-finite weights, or a folder whose parts do not fit together.
    """
    from xasml.models.base import load_estimator

    path = Path(path)
    check_estimator_folder(path)
    try:
        return load_estimator(path)
    except XasmlError:
        raise
    except Exception as exc:  # shapes or parameters that do not fit the network
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"{path}: the model files do not fit together ({type(exc).__name__}: {msg}); "
                        "expected estimator.json and weights.safetensors saved together by xasml") from None


def check_element(element: str, meta_path: Path) -> None:
    """Check the ``element`` field of a model description.

    Parameters
    ----------
    element : str
        The absorbing element the model file names.
    meta_path : Path
        The model file, for the message.

    Raises
    ------
    DataError
        Naming ``meta_path``, unless ``element`` is a chemical symbol.
    """
    from xasml.spectrum import normalize_element

    try:
        ok = normalize_element(element) == element
    except (XasmlError, ValueError, TypeError):
        ok = False
    if not ok:
        raise DataError(f"{meta_path}: field 'element' is {element!r}; expected a chemical symbol such as 'Cu'")
