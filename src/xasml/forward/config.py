"""Configuration of ``xasml forward run``: defaults, presets, descriptions, validation.

Two model presets:

* ``"paper"`` — XANESNET as published (Rankine & Penfold 2022, §II.B): MLP N × 512 × 512 × n,
  ReLU, batch norm + dropout 0.25, He-uniform, Adam lr 1e-4, batch 32, 512 epochs, 25 % of
  the lowest-variance features dropped, 5 × 5 repeated K-fold cross-validation.
* ``"fast"`` (default) — the same network trained with batch 128, a one-cycle learning-rate
  schedule peaking at 3e-3, dropout 0.1 and standardised targets for 100 epochs: better accuracy
  in a fraction of the time on a CPU (chosen by cross-validation, see ``docs/forward.md``).

:class:`ForwardConfig` (a :class:`~xasml.config.XasmlConfig`) holds every option with its default
and description. A config file (TOML or JSON) overrides any subset of the resolved preset; unknown
keys and wrong types are errors naming the file and the option. ``xasml forward run
--show-config`` prints the resolved options with their descriptions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from xasml.config import XasmlConfig, read_config_file
from xasml.errors import DataError

__all__ = ["ForwardConfig", "DEFAULTS", "PRESETS", "DESCRIPTIONS", "load_config", "describe_defaults",
           "model_params", "validate_config"]


class DataSection(XasmlConfig):
    path: str | None = Field(None, description="XANESNET folder (xyz*/ + xanes*/), XANESNET .npz, or FEFF crystal "
                                               "tree (<mp-id>/POSCAR + FEFF-XANES/)")
    element: str | None = Field(None, description="absorbing element (default: Fe for xyz folders, V for .npz, from "
                                                  "site folders for FEFF)")
    edge: str = Field("K", description="absorption edge")
    limit: int | None = Field(None, ge=1, description="read only the first N samples/materials (quick runs)")


class DescriptorSection(XasmlConfig):
    n_g2: int = Field(32, ge=0, description="radial G2 functions (paper: 32)")
    n_g4: int = Field(64, ge=0, description="angular G4 functions (paper: 64)")
    r_min: float = Field(0.0, ge=0, description="auxiliary radial grid starts at r_min + 0.5 Å")
    r_max: float = Field(6.0, gt=0, description="auxiliary radial grid ends at r_max - 0.5 Å")
    r_cut: float = Field(6.0, gt=0, description="cosine cutoff radius, Å (paper: 6.0)")
    lambdas: list[float] = Field([1.0, -1.0], description="G4 lambda values (±1)")
    zetas: list[float] = Field([1.0, 2.0, 4.0, 8.0], description="G4 zeta values (paper: 1, 2, 4, 8)")
    g2_scheme: Literal["shifted", "centred"] = Field("shifted", description="'shifted' (paper) or 'centred'")
    g4_scheme: Literal["centred", "shifted"] = Field("centred", description="'centred' (paper) or 'shifted'")

    @model_validator(mode="after")
    def _g4_multiple(self) -> DescriptorSection:
        if self.n_g4 % max(1, len(self.lambdas) * len(self.zetas)):
            raise ValueError(f"n_g4: must be a multiple of len(lambdas) * len(zetas) "
                             f"({len(self.lambdas)} x {len(self.zetas)}), got {self.n_g4}")
        return self


class BroadeningSection(XasmlConfig):
    kind: Literal["auto", "none", "lorentzian", "arctan"] = Field(
        "auto", description="'auto' (Lorentzian for FDMNES folders, none for FEFF and precomputed .npz), 'none', "
                            "'lorentzian', 'arctan'")
    fwhm: float | None = Field(None, description="Lorentzian FWHM / core-hole width, eV (null: xraydb core_width)")
    e_fermi: float | None = Field(None, description="arctan onset, absolute eV (null: tabulated edge energy)")
    gamma_max: float = Field(15.0, description="arctan maximum extra width, eV (FDMNES default 15)")
    e_center: float = Field(30.0, description="arctan centre above e_fermi, eV (FDMNES default 30)")
    e_large: float = Field(30.0, description="arctan steepness, eV (FDMNES default 30)")


class SplitSection(XasmlConfig):
    test_fraction: float = Field(0.1, gt=0, lt=1, description="fraction held out (by group/material) for the final "
                                                               "report; never used for selection")


class CVSection(XasmlConfig):
    folds: int = Field(5, ge=2, description="K of repeated K-fold cross-validation on the rest (paper: 5)")
    repeats: int = Field(1, ge=0, description="repeats of the K-fold cross-validation (paper: 5; 0 = skip CV)")


class ModelSection(XasmlConfig):
    hidden: list[int] = Field([512, 512], description="hidden layer widths (paper: [512, 512])")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on hidden layers (paper: 0.25; fast: 0.1)")
    batchnorm: bool = Field(True, description="batch normalisation on hidden layers (paper: true)")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate (paper: 1e-4); the peak for the one-cycle schedule")
    batch_size: int = Field(128, ge=2, description="mini-batch size (paper: 32)")
    epochs: int = Field(100, ge=1, description="training epochs (paper: 512)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (paper: 0)")
    schedule: Literal["constant", "onecycle", "cosine"] = Field(
        "onecycle", description="'constant' (paper), 'onecycle' or 'cosine'")
    variance_fraction: float = Field(0.25, ge=0, lt=1,
                                     description="fraction of lowest-variance features dropped (paper: 0.25)")
    correlation_threshold: float | None = Field(
        None, description="drop features correlated above this with a kept one (null: off)")
    scale_targets: bool = Field(True, description="standardise each energy point of the targets")
    x_transform: Literal["none", "log1p"] = Field("none", description="'none' or 'log1p' of the descriptor before "
                                                                      "standardisation")
    device: str | None = Field(None, description="'cpu', 'cuda' or null (cpu)")
    n_threads: int = Field(1, ge=1, description="torch threads for training (1 is fastest on a busy 2-core machine)")


class MetricsSection(XasmlConfig):
    peak_prominence: float = Field(0.05, ge=0,
                                   description="peaks: minimum prominence as a fraction of the spectrum's range")
    peak_max_shift: float = Field(5.0, gt=0, description="peaks further apart than this (eV) are not matched")


class AnalysisSection(XasmlConfig):
    enabled: bool = Field(True, description="run the feature analysis (permutation importance, select-from-model, "
                                            "forward SFS)")
    importance_repeats: int = Field(3, ge=1, description="permutations per feature")
    windows: list[list[float]] = Field([[-3.0, 3.0], [50.0, 56.0]], description="energy windows relative to the "
                                       "edge (eV) for windowed importance (paper Fig. 9)")
    select_fractions: list[float] = Field([0.1, 0.2, 0.4, 0.6, 0.8, 1.0], description="fractions of features kept "
                                          "in the select-from-model curve (paper Fig. 10)")
    sfs_features: int = Field(6, ge=0, description="features chosen by forward sequential selection (bounded; "
                                                   "fast model)")
    sfs_pool: int = Field(16, ge=1, description="candidate pool for SFS: the most important features by permutation")
    fast_epochs: int = Field(40, ge=1, description="epochs of the fast model used inside select-from-model and SFS")
    max_samples: int = Field(2000, ge=1, description="training samples used by the analysis models")


class ReportSection(XasmlConfig):
    enabled: bool = Field(True, description="write report/report.md with figures")


class ForwardConfig(XasmlConfig):
    """Every option of ``xasml forward run`` (defaults: the ``fast`` preset)."""

    seed: int = Field(0, description="seed of the splits, initialisation, shuffling and permutations")
    preset: Literal["fast", "paper"] = Field(
        "fast", description="'fast' (default: batch 128, one-cycle lr 3e-3, dropout 0.1, 100 epochs) or 'paper' "
                            "(XANESNET §II.B as published)")
    data: DataSection = Field(default_factory=DataSection, description="data set")
    descriptor: DescriptorSection = Field(default_factory=DescriptorSection, description="wACSF descriptor")
    broadening: BroadeningSection = Field(default_factory=BroadeningSection, description="spectrum broadening")
    split: SplitSection = Field(default_factory=SplitSection, description="held-out split")
    cv: CVSection = Field(default_factory=CVSection, description="cross-validation")
    model: ModelSection = Field(default_factory=ModelSection, description="MLP")
    metrics: MetricsSection = Field(default_factory=MetricsSection, description="metrics")
    analysis: AnalysisSection = Field(default_factory=AnalysisSection, description="feature analysis")
    report: ReportSection = Field(default_factory=ReportSection, description="report")


#: every option with its default (nested dicts), from :class:`ForwardConfig`
DEFAULTS: dict[str, Any] = ForwardConfig.defaults().to_dict()

#: model/CV settings of each preset (applied before the config file)
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},
    "paper": {"cv": {"folds": 5, "repeats": 5},
              "model": {"lr": 1e-4, "batch_size": 32, "epochs": 512, "schedule": "constant", "dropout": 0.25,
                        "scale_targets": False}},
}

#: one-line description of every option, from the fields
DESCRIPTIONS: dict[str, str] = ForwardConfig.descriptions()


def resolve(path: str | Path | None = None, preset: str | None = None, **overrides: Any) -> ForwardConfig:
    """The validated configuration: defaults, the preset, the file, then keyword overrides.

    Raises
    ------
    DataError
        If the file is missing or unparsable, or an option is unknown, of the wrong type or out
        of range (the file and the option named).
    """
    source = str(path) if path is not None else "config"
    file_cfg = read_config_file(path) if path is not None else {}
    name = preset or file_cfg.get("preset") or DEFAULTS["preset"]
    if name not in PRESETS:
        raise DataError(f"{source}: field 'preset': unknown preset {name!r} (known: {', '.join(PRESETS)})")
    cfg = ForwardConfig.defaults().merged({**PRESETS[name], "preset": name}, f"preset {name}")
    cfg = cfg.merged({k: v for k, v in file_cfg.items() if k != "preset"}, source)
    return cfg.merged({k: v for k, v in overrides.items() if v is not None}, "config")


def load_config(path: str | Path | None = None, preset: str | None = None, **overrides: Any) -> dict:
    """Resolve the configuration (see :func:`resolve`) as nested dicts.

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
    return resolve(path, preset, **overrides).to_dict()


def validate_config(cfg: dict) -> None:
    """Check a configuration dict; raises :class:`DataError` naming the option."""
    ForwardConfig.from_dict(cfg, "config")


def model_params(cfg: dict) -> dict:
    """Keyword arguments of :class:`xasml.models.xanesnet.XanesnetMLP` from a resolved config."""
    m = dict(cfg["model"])
    m["hidden"] = tuple(m["hidden"])
    m["seed"] = int(cfg["seed"])
    return m


def describe_defaults(preset: str | None = "fast", path: str | Path | None = None) -> str:
    """The resolved options of ``preset`` (and ``path``) with their descriptions, one per line."""
    return resolve(path, preset).show()
