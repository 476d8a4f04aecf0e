"""Configuration of ``xasml topology run``: defaults (the paper's settings), descriptions, validation.

A config file (TOML or JSON) overrides any subset of :data:`DEFAULTS`; unknown keys are an
error naming the key. The resolved configuration (every option) is written to the run
folder's ``config.json``. ``xasml topology run --show-config`` prints the defaults with their
descriptions.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from xasml.config import merge_config, read_config_file
from xasml.errors import DataError

#: every option with its default; network defaults are those of Andrejevic et al. (2022)
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "data": {
        "path": None,
        "labels": None,
        "omnixas": None,
        "ambiguous_catalogue": "conflict",
    },
    "grid": {"width": 56.0, "n_points": 200, "anchor": "median-overlap"},
    "split": {"fractions": [0.7, 0.15, 0.15], "fixed": {}},
    "models": ["topology_net", "nn_type", "svm_type", "svm_type_aug", "svm_spectra", "pca_kmeans"],
    "network": {
        "spectral_hidden": 256, "spectral_dim": 64, "type_dim": 93, "hidden": [256, 64], "dropout": 0.5,
        "lr": 1e-4, "weight_decay": 0.0, "epochs": 80, "patience": 20, "batch_size": 32,
        "pos_weight": "balanced", "n_ensemble": 1, "threshold_method": "youden", "device": None,
    },
    "network_variants": {},
    "svm": {"C": 1.0, "kernel": "rbf", "gamma": "scale", "class_weight": "balanced"},
    "pca_kmeans": {"variance": 0.8, "n_clusters": 2, "min_count": 4},
    "resolution": {"enabled": True, "delta_e": [0.28, 1.0, 2.0, 5.0, 10.0],
                   "models": ["topology_net", "svm_spectra"]},
    "report": {"enabled": True, "pca_elements": 4, "spectra_elements": 3},
}

#: one-line description of every option (shown by ``--show-config``)
DESCRIPTIONS: dict[str, str] = {
    "seed": "seed of the split, the network initialisation and every random choice",
    "data.path": "dataset: built .parquet or feff10-topology-v0-style folder (null = bundled default)",
    "data.labels": "catalogue folder (materiae/, arsenal/) to re-label compounds; null = labels in the data",
    "data.omnixas": "omnixas-cu-feff folder whose labelled compounds join when all their elements have spectra",
    "data.ambiguous_catalogue": "'conflict' drops compounds whose entries in one catalogue disagree; 'abstain' ignores that catalogue",
    "grid.width": "energy window per element, eV (paper: 56)",
    "grid.n_points": "points per spectrum (paper: 200)",
    "grid.anchor": "window placement: 'median-overlap' (centred on the typical spectrum) or 'start'",
    "split.fractions": "train/val/test fractions (paper: 0.7/0.15/0.15)",
    "split.fixed": "optional {val: [ids], test: [ids]}: these compounds form val and test, every other compound "
                   "is training data (to add training data while keeping an earlier run's test split)",
    "models": "models to train and compare (registered names)",
    "network.spectral_hidden": "first spectral-embedding layer width (256)",
    "network.spectral_dim": "spectral embedding width (64)",
    "network.type_dim": "atom-type embedding width (93)",
    "network.hidden": "head widths after the direct product ([256, 64])",
    "network.dropout": "dropout rate (0.5)",
    "network.lr": "Adam learning rate (1e-4)",
    "network.weight_decay": "Adam weight decay (0)",
    "network.epochs": "maximum epochs (80)",
    "network.patience": "early-stopping patience in epochs on the validation loss (null: none)",
    "network.batch_size": "mini-batch size",
    "network.pos_weight": "'balanced' (n_trivial/n_topological) or a number: BCE weight of the topological class",
    "network.n_ensemble": "networks averaged (1 in the paper)",
    "network.threshold_method": "decision threshold from the validation ROC: 'youden', 'f1' or 'fixed' (0.5)",
    "network.device": "'cpu', 'cuda' or null (GPU when present)",
    "network_variants": "extra network models: name -> overrides of 'network' (chosen on validation, never test)",
    "svm.C": "SVM regularisation", "svm.kernel": "'rbf' or 'linear'", "svm.gamma": "RBF gamma ('scale' or number)",
    "svm.class_weight": "'balanced' or null",
    "pca_kmeans.variance": "explained variance kept by PCA (0.8)", "pca_kmeans.n_clusters": "k-means clusters (2)",
    "pca_kmeans.min_count": "minimum training compounds per element",
    "resolution.enabled": "run the energy-resolution study (paper Figure S7)",
    "resolution.delta_e": "averaging intervals, eV",
    "resolution.models": "models retrained at each resolution",
    "report.enabled": "write report/report.md with figures",
    "report.pca_elements": "elements shown in the PCA + k-means figure",
    "report.spectra_elements": "elements shown in the example-spectra figures",
}


def _merge(base: dict, over: dict, where: str = "") -> dict:
    return merge_config(base, over, where, opaque=("network_variants", "split.fixed"))


def load_config(path: str | Path | None = None, **overrides: Any) -> dict:
    """Resolve the configuration: defaults, then the file, then keyword overrides.

    Parameters
    ----------
    path : str or Path, optional
        TOML (``.toml``) or JSON file.
    **overrides
        Top-level options (e.g. ``seed=3``) or dotted ones as nested dicts.

    Returns
    -------
    dict
        The resolved configuration.

    Raises
    ------
    DataError
        If the file is missing, unparsable, or has an unknown option or wrong type.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        try:
            cfg = _merge(cfg, read_config_file(path))
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
    cfg = _merge(cfg, {k: v for k, v in overrides.items() if v is not None})
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict) -> None:
    """Check types and ranges of the options that can go wrong.

    Raises
    ------
    DataError
        Naming the option and what was expected.
    """
    from xasml.models import available_models

    fr = cfg["split"]["fractions"]
    if len(fr) != 3 or abs(sum(fr) - 1) > 1e-6 or min(fr) <= 0:
        raise DataError(f"config: split.fractions must be three positive numbers summing to 1, got {fr}")
    known = set(available_models()) | set(cfg["network_variants"])
    for m in cfg["models"]:
        if m not in known:
            raise DataError(f"config: models: unknown model {m!r} (known: {', '.join(sorted(known))})")
    for name, over in cfg["network_variants"].items():
        if not isinstance(over, dict):
            raise DataError(f"config: network_variants.{name} must be a table of network options")
        for k in over:
            if k not in DEFAULTS["network"]:
                raise DataError(f"config: network_variants.{name}.{k}: unknown network option")
    if int(cfg["grid"]["n_points"]) < 2 or float(cfg["grid"]["width"]) <= 0:
        raise DataError("config: grid.n_points must be >= 2 and grid.width > 0")
    if int(cfg["network"]["epochs"]) < 1:
        raise DataError("config: network.epochs must be >= 1")
    if cfg["data"]["ambiguous_catalogue"] not in ("conflict", "abstain"):
        raise DataError("config: data.ambiguous_catalogue must be 'conflict' or 'abstain'")


def describe_defaults() -> str:
    """The defaults with their descriptions, one option per line."""
    lines = []

    def walk(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict) and v and k != "network_variants":
                walk(v, key + ".")
            else:
                lines.append(f"{key} = {json.dumps(v)}    # {DESCRIPTIONS.get(key, '')}")

    walk(DEFAULTS)
    return "\n".join(lines)
