"""Configuration of ``xasml topology run``: the paper's settings as a :class:`~xasml.config.XasmlConfig`.

:class:`TopologyConfig` holds every option with its default and description (one place); a
config file (TOML or JSON) overrides any subset, unknown keys and wrong types are errors naming
the file and the option. The resolved configuration (every option) is written to the run
folder's ``config.json``; ``xasml topology run --show-config`` prints it with the descriptions.
:func:`load_config` returns it as nested dicts, which is what the run code indexes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from xasml.config import XasmlConfig

__all__ = ["TopologyConfig", "DEFAULTS", "DESCRIPTIONS", "load_config", "validate_config", "describe_defaults"]


class DataSection(XasmlConfig):
    path: str | list[str] | None = Field(
        None, description="dataset: built .parquet or feff10-topology-v0-style folder (null = bundled default)")
    labels: str | None = Field(
        None, description="catalogue folder (materiae/, arsenal/) to re-label compounds; null = labels in the data")
    omnixas: str | None = Field(
        None, description="omnixas-cu-feff folder whose labelled compounds join when all their elements have spectra")
    ambiguous_catalogue: Literal["conflict", "abstain"] = Field(
        "conflict", description="'conflict' drops compounds whose entries in one catalogue disagree; 'abstain' "
                                "ignores that catalogue")


class GridSection(XasmlConfig):
    width: float = Field(56.0, gt=0, description="energy window per element, eV (paper: 56)")
    n_points: int = Field(200, ge=2, description="points per spectrum (paper: 200)")
    anchor: Literal["median-overlap", "start"] = Field(
        "median-overlap", description="window placement: 'median-overlap' (centred on the typical spectrum) or 'start'")


class SplitSection(XasmlConfig):
    fractions: list[float] = Field([0.7, 0.15, 0.15], description="train/val/test fractions (paper: 0.7/0.15/0.15)")
    fixed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="optional {val: [ids], test: [ids]}: these compounds form val and test, every other compound "
                    "is training data (to add training data while keeping an earlier run's test split)")

    @field_validator("fractions")
    @classmethod
    def _three_fractions(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or abs(sum(v) - 1) > 1e-6 or min(v) <= 0:
            raise ValueError(f"must be three positive numbers summing to 1, got {v}")
        return v


class NetworkSection(XasmlConfig):
    spectral_hidden: int = Field(256, ge=1, description="first spectral-embedding layer width (256)")
    spectral_dim: int = Field(64, ge=1, description="spectral embedding width (64)")
    type_dim: int = Field(93, ge=1, description="atom-type embedding width (93)")
    hidden: list[int] = Field([256, 64], description="head widths after the direct product ([256, 64])")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout rate (0.5)")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate (1e-4)")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay (0)")
    epochs: int = Field(80, ge=1, description="maximum epochs (80)")
    patience: int | None = Field(20, description="early-stopping patience in epochs on the validation loss (null: none)")
    batch_size: int = Field(32, ge=1, description="mini-batch size")
    pos_weight: Literal["balanced"] | float = Field(
        "balanced", description="'balanced' (n_trivial/n_topological) or a number: BCE weight of the topological class")
    n_ensemble: int = Field(1, ge=1, description="networks averaged (1 in the paper)")
    threshold_method: Literal["youden", "f1", "fixed"] = Field(
        "youden", description="decision threshold from the validation ROC: 'youden', 'f1' or 'fixed' (0.5)")
    device: str | None = Field(None, description="'cpu', 'cuda' or null (GPU when present)")


class SVMSection(XasmlConfig):
    C: float = Field(1.0, gt=0, description="SVM regularisation")
    kernel: Literal["rbf", "linear"] = Field("rbf", description="'rbf' or 'linear'")
    gamma: Literal["scale", "auto"] | float = Field("scale", description="RBF gamma ('scale' or number)")
    class_weight: Literal["balanced"] | None = Field("balanced", description="'balanced' or null")


class PCAKMeansSection(XasmlConfig):
    variance: float = Field(0.8, gt=0, le=1, description="explained variance kept by PCA (0.8)")
    n_clusters: int = Field(2, ge=2, description="k-means clusters (2)")
    min_count: int = Field(4, ge=1, description="minimum training compounds per element")


class ResolutionSection(XasmlConfig):
    enabled: bool = Field(True, description="run the energy-resolution study (paper Figure S7)")
    delta_e: list[float] = Field([0.28, 1.0, 2.0, 5.0, 10.0], description="averaging intervals, eV")
    models: list[str] = Field(["topology_net", "svm_spectra"], description="models retrained at each resolution")


class ReportSection(XasmlConfig):
    enabled: bool = Field(True, description="write report/report.md with figures")
    pca_elements: int = Field(4, ge=0, description="elements shown in the PCA + k-means figure")
    spectra_elements: int = Field(3, ge=0, description="elements shown in the example-spectra figures")


class TopologyConfig(XasmlConfig):
    """Every option of ``xasml topology run``; network defaults are those of Andrejevic et al. (2022)."""

    seed: int = Field(0, description="seed of the split, the network initialisation and every random choice")
    data: DataSection = Field(default_factory=DataSection, description="dataset")
    grid: GridSection = Field(default_factory=GridSection, description="energy grid per element")
    split: SplitSection = Field(default_factory=SplitSection, description="train/val/test split")
    models: list[str] = Field(["topology_net", "nn_type", "svm_type", "svm_type_aug", "svm_spectra", "pca_kmeans"],
                              description="models to train and compare (registered names)")
    network: NetworkSection = Field(default_factory=NetworkSection, description="the paper's network")
    network_variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="extra network models: name -> overrides of 'network' (chosen on validation, never test)")
    svm: SVMSection = Field(default_factory=SVMSection, description="SVM baselines")
    pca_kmeans: PCAKMeansSection = Field(default_factory=PCAKMeansSection, description="PCA + k-means baseline")
    resolution: ResolutionSection = Field(default_factory=ResolutionSection, description="energy-resolution study")
    report: ReportSection = Field(default_factory=ReportSection, description="report")

    @model_validator(mode="after")
    def _known_models(self) -> TopologyConfig:
        from xasml.models import available_models

        for name, over in self.network_variants.items():
            for k in over:
                if k not in NetworkSection.model_fields:
                    raise ValueError(f"network_variants.{name}.{k}: unknown network option (known: "
                                     f"{', '.join(NetworkSection.model_fields)})")
            try:
                NetworkSection.model_validate({**self.network.to_dict(), **over})
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ValueError(f"network_variants.{name}.{err['loc'][0]}: {err['msg']}, got {err.get('input')!r}") \
                    from None
        known = set(available_models()) | set(self.network_variants)
        for m in self.models:
            if m not in known:
                raise ValueError(f"models: unknown model {m!r} (known: {', '.join(sorted(known))})")
        return self


#: every option with its default (nested dicts), from :class:`TopologyConfig`
DEFAULTS: dict[str, Any] = TopologyConfig.defaults().to_dict()
#: one-line description of every option (shown by ``--show-config``), from the fields
DESCRIPTIONS: dict[str, str] = TopologyConfig.descriptions()


def load_config(path: str | Path | None = None, **overrides: Any) -> dict:
    """Resolve the configuration: defaults, then the file, then keyword overrides.

    Parameters
    ----------
    path : str or Path, optional
        TOML (``.toml``) or JSON file.
    **overrides
        Top-level options (e.g. ``seed=3``) or nested dicts (``network={"epochs": 3}``).

    Returns
    -------
    dict
        The resolved configuration (``TopologyConfig.to_dict()``).

    Raises
    ------
    DataError
        If the file is missing or unparsable, or an option is unknown or of the wrong type or
        range (the file and the option named).
    """
    cfg = TopologyConfig.from_file(path) if path is not None else TopologyConfig.defaults()
    cfg = cfg.merged({k: v for k, v in overrides.items() if v is not None}, "config")
    return cfg.to_dict()


def validate_config(cfg: dict) -> None:
    """Check a configuration dict (types, ranges, model names).

    Raises
    ------
    DataError
        Naming the option and what was expected.
    """
    TopologyConfig.from_dict({k: v for k, v in cfg.items()}, "config")


def describe_defaults(path: str | Path | None = None, **overrides: Any) -> str:
    """Every option with the value a run would use (defaults, then ``path``, then ``overrides``:
    the options given on the command line) and its description, one per line (``--show-config``)."""
    cfg = TopologyConfig.from_file(path) if path is not None else TopologyConfig.defaults()
    return cfg.merged({k: v for k, v in overrides.items() if v is not None}, "command line").show()
