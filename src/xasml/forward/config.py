"""Configuration of ``xasml forward run``: defaults, presets, descriptions, validation.

Two model presets:

* ``"paper"`` — XANESNET as published (Rankine & Penfold 2022, §II.B): MLP N × 512 × 512 × n,
  ReLU, batch norm + dropout 0.25, He-uniform, Adam lr 1e-4, batch 32, 512 epochs, 25 % of
  the lowest-variance features dropped, 5 × 5 repeated K-fold cross-validation.
* ``"fast"`` (default) — the same network trained with batch 128, a one-cycle learning-rate
  schedule peaking at 3e-3, dropout 0.1 and standardised targets for 100 epochs: better accuracy
  in a fraction of the time on a CPU (chosen by cross-validation, see ``docs/forward.md``).

A config file (TOML or JSON) overrides any subset of the resolved preset; unknown keys are an
error naming the key. ``xasml forward run --show-config`` prints the defaults with descriptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xasml.config import merge_config, read_config_file
from xasml.errors import DataError

__all__ = ["DEFAULTS", "PRESETS", "DESCRIPTIONS", "load_config", "describe_defaults", "model_params"]

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "preset": "fast",
    "data": {"path": None, "element": None, "edge": "K", "limit": None},
    "descriptor": {"n_g2": 32, "n_g4": 64, "r_min": 0.0, "r_max": 6.0, "r_cut": 6.0,
                   "lambdas": [1.0, -1.0], "zetas": [1.0, 2.0, 4.0, 8.0],
                   "g2_scheme": "shifted", "g4_scheme": "centred"},
    "broadening": {"kind": "auto", "fwhm": None, "e_fermi": None, "gamma_max": 15.0, "e_center": 30.0,
                   "e_large": 30.0},
    "split": {"test_fraction": 0.1},
    "cv": {"folds": 5, "repeats": 1},
    "model": {"hidden": [512, 512], "dropout": 0.1, "batchnorm": True, "lr": 3e-3, "batch_size": 128,
              "epochs": 100, "weight_decay": 0.0, "schedule": "onecycle", "variance_fraction": 0.25,
              "correlation_threshold": None, "scale_targets": True, "x_transform": "none", "device": None,
              "n_threads": 1},
    "metrics": {"peak_prominence": 0.05, "peak_max_shift": 5.0},
    "analysis": {"enabled": True, "importance_repeats": 3,
                 "windows": [[-3.0, 3.0], [50.0, 56.0]], "select_fractions": [0.1, 0.2, 0.4, 0.6, 0.8, 1.0],
                 "sfs_features": 6, "sfs_pool": 16, "fast_epochs": 40, "max_samples": 2000},
    "report": {"enabled": True},
}

#: model/CV settings of each preset (applied before the config file)
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},
    "paper": {"cv": {"folds": 5, "repeats": 5},
              "model": {"lr": 1e-4, "batch_size": 32, "epochs": 512, "schedule": "constant", "dropout": 0.25,
                        "scale_targets": False}},
}

DESCRIPTIONS: dict[str, str] = {
    "seed": "seed of the splits, initialisation, shuffling and permutations",
    "preset": "'fast' (default: batch 128, one-cycle lr 3e-3, dropout 0.1, 100 epochs) or 'paper' (XANESNET §II.B as published)",
    "data.path": "XANESNET folder (xyz*/ + xanes*/), XANESNET .npz, or FEFF crystal tree (<mp-id>/POSCAR + FEFF-XANES/)",
    "data.element": "absorbing element (default: Fe for xyz folders, V for .npz, from site folders for FEFF)",
    "data.edge": "absorption edge",
    "data.limit": "read only the first N samples/materials (quick runs)",
    "descriptor.n_g2": "radial G2 functions (paper: 32)",
    "descriptor.n_g4": "angular G4 functions (paper: 64)",
    "descriptor.r_min": "auxiliary radial grid starts at r_min + 0.5 Å",
    "descriptor.r_max": "auxiliary radial grid ends at r_max - 0.5 Å",
    "descriptor.r_cut": "cosine cutoff radius, Å (paper: 6.0)",
    "descriptor.lambdas": "G4 lambda values (±1)",
    "descriptor.zetas": "G4 zeta values (paper: 1, 2, 4, 8)",
    "descriptor.g2_scheme": "'shifted' (paper) or 'centred'",
    "descriptor.g4_scheme": "'centred' (paper) or 'shifted'",
    "broadening.kind": "'auto' (Lorentzian for FDMNES folders, none for FEFF and precomputed .npz), 'none', 'lorentzian', 'arctan'",
    "broadening.fwhm": "Lorentzian FWHM / core-hole width, eV (null: xraydb core_width)",
    "broadening.e_fermi": "arctan onset, absolute eV (null: tabulated edge energy)",
    "broadening.gamma_max": "arctan maximum extra width, eV (FDMNES default 15)",
    "broadening.e_center": "arctan centre above e_fermi, eV (FDMNES default 30)",
    "broadening.e_large": "arctan steepness, eV (FDMNES default 30)",
    "split.test_fraction": "fraction held out (by group/material) for the final report; never used for selection",
    "cv.folds": "K of repeated K-fold cross-validation on the rest (paper: 5)",
    "cv.repeats": "repeats of the K-fold cross-validation (paper: 5; 0 = skip CV)",
    "model.hidden": "hidden layer widths (paper: [512, 512])",
    "model.dropout": "dropout on hidden layers (paper: 0.25; fast: 0.1)",
    "model.batchnorm": "batch normalisation on hidden layers (paper: true)",
    "model.lr": "Adam learning rate (paper: 1e-4); the peak for the one-cycle schedule",
    "model.batch_size": "mini-batch size (paper: 32)",
    "model.epochs": "training epochs (paper: 512)",
    "model.weight_decay": "AdamW weight decay (paper: 0)",
    "model.schedule": "'constant' (paper), 'onecycle' or 'cosine'",
    "model.variance_fraction": "fraction of lowest-variance features dropped (paper: 0.25)",
    "model.correlation_threshold": "drop features correlated above this with a kept one (null: off)",
    "model.scale_targets": "standardise each energy point of the targets",
    "model.x_transform": "'none' or 'log1p' of the descriptor before standardisation",
    "model.device": "'cpu', 'cuda' or null (cpu)",
    "model.n_threads": "torch threads for training (1 is fastest on a busy 2-core machine)",
    "metrics.peak_prominence": "peaks: minimum prominence as a fraction of the spectrum's range",
    "metrics.peak_max_shift": "peaks further apart than this (eV) are not matched",
    "analysis.enabled": "run the feature analysis (permutation importance, select-from-model, forward SFS)",
    "analysis.importance_repeats": "permutations per feature",
    "analysis.windows": "energy windows relative to the edge (eV) for windowed importance (paper Fig. 9)",
    "analysis.select_fractions": "fractions of features kept in the select-from-model curve (paper Fig. 10)",
    "analysis.sfs_features": "features chosen by forward sequential selection (bounded; fast model)",
    "analysis.sfs_pool": "candidate pool for SFS: the most important features by permutation",
    "analysis.fast_epochs": "epochs of the fast model used inside select-from-model and SFS",
    "analysis.max_samples": "training samples used by the analysis models",
    "report.enabled": "write report/report.md with figures",
}


def _merge(base: dict, over: dict, where: str = "") -> dict:
    return merge_config(base, over, where)


def load_config(path: str | Path | None = None, preset: str | None = None, **overrides: Any) -> dict:
    """Resolve the configuration: defaults, the preset, the file, then keyword overrides.

    Parameters
    ----------
    path : str or Path, optional
        TOML or JSON file overriding any subset of the options.
    preset : {"fast", "paper"}, optional
        Overrides the file's ``preset``.
    **overrides
        Nested dicts of options (e.g. ``cv={"repeats": 1}``) or top-level values.

    Returns
    -------
    dict

    Raises
    ------
    DataError
        If the file is missing or unparsable, an option is unknown or a value is invalid.
    """
    file_cfg = read_config_file(path) if path is not None else {}
    name = preset or file_cfg.get("preset") or DEFAULTS["preset"]
    if name not in PRESETS:
        raise DataError(f"config: preset {name!r} unknown (known: {', '.join(PRESETS)})")
    cfg = _merge(DEFAULTS, PRESETS[name])
    cfg["preset"] = name
    try:
        cfg = _merge(cfg, {k: v for k, v in file_cfg.items() if k != "preset"})
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    cfg = _merge(cfg, {k: v for k, v in overrides.items() if v is not None})
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict) -> None:
    """Check the options that can go wrong; raises :class:`DataError` naming the option."""
    if cfg["broadening"]["kind"] not in ("auto", "none", "lorentzian", "arctan"):
        raise DataError("config: broadening.kind must be 'auto', 'none', 'lorentzian' or 'arctan'")
    if not 0 < float(cfg["split"]["test_fraction"]) < 1:
        raise DataError("config: split.test_fraction must be in (0, 1)")
    if int(cfg["cv"]["folds"]) < 2 or int(cfg["cv"]["repeats"]) < 0:
        raise DataError("config: cv.folds must be >= 2 and cv.repeats >= 0")
    m = cfg["model"]
    if int(m["epochs"]) < 1 or int(m["batch_size"]) < 2:
        raise DataError("config: model.epochs must be >= 1 and model.batch_size >= 2")
    if m["schedule"] not in ("constant", "onecycle", "cosine"):
        raise DataError("config: model.schedule must be 'constant', 'onecycle' or 'cosine'")
    if not 0 <= float(m["variance_fraction"]) < 1:
        raise DataError("config: model.variance_fraction must be in [0, 1)")
    d = cfg["descriptor"]
    if int(d["n_g4"]) % max(1, len(d["lambdas"]) * len(d["zetas"])):
        raise DataError("config: descriptor.n_g4 must be a multiple of len(lambdas) * len(zetas)")


def model_params(cfg: dict) -> dict:
    """Keyword arguments of :class:`xasml.models.xanesnet.XanesnetMLP` from a resolved config."""
    m = dict(cfg["model"])
    m["hidden"] = tuple(m["hidden"])
    m["seed"] = int(cfg["seed"])
    return m


def describe_defaults(preset: str = "fast") -> str:
    """The resolved defaults of ``preset`` with their descriptions, one option per line."""
    cfg = _merge(DEFAULTS, PRESETS[preset])
    lines = []

    def walk(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict) and v:
                walk(v, key + ".")
            else:
                lines.append(f"{key} = {json.dumps(v)}    # {DESCRIPTIONS.get(key, '')}")

    walk(cfg)
    return "\n".join(lines)
