"""The estimator contract shared by every xasml model, a name registry, and pickle-free storage.

Every model follows scikit-learn's conventions (parameters stored unchanged in ``__init__`` and
returned by ``get_params``, learned state in attributes with a trailing underscore, ``fit``
returns ``self``, :class:`sklearn.exceptions.NotFittedError` before ``fit``, classifiers and
regressors carry scikit-learn's ``ClassifierMixin`` / ``RegressorMixin``, fitted models pickle)
and adds ``save(path)`` / ``load(path)``. Storage is pickle-free: ``estimator.json`` holds the
registered name, the parameters and JSON state; ``weights.safetensors`` holds the arrays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.base import BaseEstimator

from xasml.errors import DataError
from xasml.utils import atomic_path, atomic_write_json

_REGISTRY: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register an estimator under ``name`` so configs can refer to it."""

    def deco(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        cls._registry_name = name
        return cls

    return deco


def get_model(name: str) -> type:
    """Return the estimator class registered as ``name``.

    Raises
    ------
    KeyError
        With the list of known names, if ``name`` is not registered.
    """
    _import_model_modules()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def available_models() -> list[str]:
    """Names of all registered models."""
    _import_model_modules()
    return sorted(_REGISTRY)


def _import_model_modules() -> None:
    """Import the model modules so that their ``@register_model`` decorators run."""
    import importlib
    import pkgutil

    import xasml.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base", "nets"):  # nets holds torch modules only (and imports torch)
            importlib.import_module(f"xasml.models.{mod.name}")


class XasmlEstimator(BaseEstimator):
    """Base class of xasml models: scikit-learn estimator plus pickle-free ``save``/``load``.

    Subclasses implement ``fit``, ``predict`` (and ``predict_proba`` for classifiers) and the two
    hooks :meth:`_get_state` / :meth:`_set_state`.
    """

    _registry_name: str = ""

    # -- scikit-learn helpers ----------------------------------------------------------------
    def _validate(self, X, y="no_validation", reset: bool = True, **check_params):
        """:func:`sklearn.utils.validation.validate_data`, with its ``ValueError`` raised as :class:`DataError`.

        ``reset=True`` (in ``fit``) records ``n_features_in_`` (and ``feature_names_in_``);
        ``reset=False`` (in ``predict``) checks the input against them. The message is
        scikit-learn's (what is wrong and what was expected); the type is xasml's, which is also
        a ``ValueError``, so scikit-learn's checks and the command line's error handling both apply.

        Returns
        -------
        X, or (X, y) when ``y`` is given
            The validated arrays.
        """
        try:
            from sklearn.utils.validation import validate_data
        except ImportError:  # scikit-learn < 1.6: the same function as a method

            def validate_data(est, *args, **kwargs):
                """``est._validate_data`` of scikit-learn < 1.6."""
                return est._validate_data(*args, **kwargs)

        try:
            return validate_data(self, X, y, reset=reset, **check_params)
        except DataError:
            raise
        except ValueError as exc:
            name = type(self).__name__
            raise DataError(str(exc) if name in str(exc) else f"{name}: {exc}") from None

    def _check_fitted(self, attributes: str | list[str]) -> None:
        """Raise :class:`sklearn.exceptions.NotFittedError` unless ``attributes`` are set (by ``fit`` or ``load``)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, attributes, msg="%(name)s is not fitted: call fit() or load a saved model")

    # -- hooks -------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return (arrays, json_state) describing the fitted model."""
        raise NotImplementedError

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Restore the fitted model from what :meth:`_get_state` returned."""
        raise NotImplementedError

    # -- storage -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to folder ``path`` (``estimator.json`` + ``weights.safetensors``), atomically per file.

        Returns
        -------
        Path
            The folder.
        """
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays, state = self._get_state()
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        with atomic_path(path / "weights.safetensors") as tmp:
            save_file(arrays, str(tmp))
        atomic_write_json(path / "estimator.json", {
            "model": self._registry_name or type(self).__name__,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": self.get_params(deep=False),
            "state": state,
        })
        return path

    @classmethod
    def load(cls, path: str | Path) -> "XasmlEstimator":
        """Load an estimator saved by :meth:`save` (any registered class when called on the base)."""
        return load_estimator(path)


def load_estimator(path: str | Path) -> XasmlEstimator:
    """Load an estimator folder written by :meth:`XasmlEstimator.save`.

    Raises
    ------
    DataError
        If ``estimator.json`` or ``weights.safetensors`` is missing or names an unknown model.
    """
    from safetensors.numpy import load_file

    path = Path(path)
    meta_path = path / "estimator.json"
    if not meta_path.exists():
        raise DataError(f"{path}: not a saved model (no estimator.json)")
    meta = json.loads(meta_path.read_text())
    try:
        cls = get_model(meta["model"])
    except KeyError as exc:
        raise DataError(f"{meta_path}: field 'model': {exc.args[0]}") from None
    est = cls(**meta.get("params", {}))
    weights = path / "weights.safetensors"
    arrays = load_file(str(weights)) if weights.exists() else {}
    est._set_state(arrays, meta.get("state", {}))
    return est


def torch_state_to_numpy(module) -> dict[str, np.ndarray]:
    """A torch module's ``state_dict`` as numpy arrays (for safetensors)."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def numpy_to_torch_state(module, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
    """Load numpy arrays (keys optionally prefixed) into a torch module's ``state_dict``."""
    import torch

    sd = {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
    module.load_state_dict(sd)
