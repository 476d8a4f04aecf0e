"""Configuration of ``xasml local run``: every option with its default and a one-line description.

A configuration is a plain JSON or TOML file whose keys are the fields of :class:`LocalConfig`
(unknown keys are an error naming the file and the key). Defaults reproduce Carbone et al.,
Phys. Rev. Materials 3, 033604 (2019) for one absorbing element, with two protocols:
(a) oxide sites, classes T:4, S:5, O:6 (the paper's); (b) every environment with >= 50 sites.
Nothing here is specific to Cu: ``element`` and the protocols' class sets are options.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xasml.errors import DataError
from xasml.utils import shared_data_dir


def default_data_path() -> str:
    """``$XASML_DATA`` if set, else ``../shared/data/omnixas-cu-feff`` relative to the repository."""
    env = os.environ.get("XASML_DATA")
    if env:
        return env
    return str(shared_data_dir() / "omnixas-cu-feff")


def default_experimental_path() -> str:
    """``$XASML_EXPERIMENTAL`` if set, else ``../shared/data/experimental`` relative to the repository."""
    return os.environ.get("XASML_EXPERIMENTAL", str(shared_data_dir() / "experimental"))


@dataclass
class Protocol:
    """A classification protocol: which sites and which classes.

    Attributes
    ----------
    name : str
        Short name used in file names (``"a"``).
    classes : list of str or None
        ChemEnv symbols to classify; None = every environment with >= ``min_count`` sites.
    min_count : int
        Threshold when ``classes`` is None.
    ligands : list of str or None
        Keep only sites whose neighbours are all of these elements (``["O"]``: oxides).
    description : str
    """

    name: str
    classes: list[str] | None = None
    min_count: int = 50
    ligands: list[str] | None = None
    description: str = ""


def _default_protocols() -> list[Protocol]:
    return [Protocol("a", ["T:4", "S:5", "O:6"], 0, ["O"], "oxide sites, T:4 / S:5 / O:6 (Carbone et al. 2019)"),
            Protocol("b", None, 50, None, "every environment with at least 50 sites")]


#: one-line description of every option (shown by ``xasml local run --help`` and in docs/local.md)
HELP: dict[str, str] = {
    "data": "data folder with <material>/FEFF-XANES/<index>_<El>/xmu.dat and POSCAR (default $XASML_DATA or ../shared/data/omnixas-cu-feff)",
    "element": "absorbing element",
    "edge": "absorption edge",
    "n_jobs": "worker processes for site labelling",
    "n_threads": "torch threads for training (1 is fastest for these small networks, and on a shared machine)",
    "use_shipped_labels": "reuse the label table shipped in xasml/data/local when the structure files match (SHA-1)",
    "distance_cutoff": "ChemEnv: neighbours beyond this x nearest-neighbour distance are ignored (paper: 1.2)",
    "angle_cutoff": "ChemEnv SimplestChemenvStrategy solid-angle cutoff",
    "n_points": "grid points (paper: 100)",
    "step": "grid spacing in eV (paper: ~0.5)",
    "dedup_threshold": "drop one of two spectra with mean absolute difference below this (paper: 0.015)",
    "split_fractions": "train / validation / test fractions (grouped by material, stratified by environment)",
    "seed": "seed of splits, initialisation, augmentation noise and bootstrap",
    "protocols": "classification protocols (name, classes or min_count, ligands)",
    "archs": "classifier architectures to train: mlp and/or cnn",
    "n_models": "independently trained classifiers per architecture (std over them is reported; paper: 10)",
    "n_boot": "bootstrap resamples of the test split (one per trained model; paper: 10)",
    "epochs": "classifier training epochs (paper: 50; 100 with the cosine schedule chosen on the validation split)",
    "regression_epochs": "training epochs of the regression ensemble members",
    "batch_size": "mini-batch size (paper: 32)",
    "learning_rate": "Adam learning rate",
    "class_weight": "classifier loss weighting: 'balanced' (class c weighted by n / (k n_c); chosen on the validation split) or null (plain cross-entropy, the paper)",
    "lr_schedule": "classifier learning-rate schedule: 'cosine' (annealed to 0 over the epochs; chosen on the validation split) or 'constant' (the paper)",
    "shifts": "training augmentation energy shifts in eV (paper: +-1, +-2)",
    "noise_sigma": "Gaussian noise added to the shifted training copies, in units of the spectrum maximum (paper: 0.03)",
    "pre_edge_ablation": "also train on the pre-edge region only (grid below the median edge energy)",
    "pre_edge_protocols": "protocols that get the pre-edge ablation (the paper's is a)",
    "robustness": "F1 against test-set energy shift and noise, models with and without augmentation",
    "robustness_protocol": "protocol used for the robustness study",
    "robustness_models": "models per variant in the robustness study",
    "eval_shifts": "test-set energy shifts in eV for the robustness curve",
    "eval_sigmas": "test-set noise levels for the robustness curve",
    "regression_targets": "site properties regressed by an ensemble (oxidation_state, coordination_number)",
    "n_ensemble": "members of each regression ensemble (mean = prediction, std = uncertainty)",
    "regression_noise_copies": "noisy copies (sigma = noise_sigma) added to the regression training set; no energy shifts, which would blur the chemical shift",
    "calibrate_std": "scale the ensemble spread on the validation split so that mean +- 2 std covers 95 % (raw coverage is reported too)",
    "regression_arch": "architecture of the regression members (mlp or cnn)",
    "ship_protocol": "protocol whose classifier becomes models/coordination (the model predict uses)",
    "ship_arch": "architecture of models/coordination",
    "experimental": "folder with measured spectra (xas-data-library/data/<El>/*.xdi, rfxas/experiment.csv); empty to skip",
}


#: classifier training options of Carbone et al. (2019), §II.C (``xasml local run --paper``)
PAPER_TRAINING: dict[str, Any] = {"epochs": 50, "batch_size": 32, "learning_rate": 1e-3, "class_weight": None,
                                  "lr_schedule": "constant"}


@dataclass
class LocalConfig:
    """Every option of ``xasml local run`` (see :data:`HELP` for one line on each)."""

    data: str = field(default_factory=default_data_path)
    element: str = "Cu"
    edge: str = "K"
    n_jobs: int = 2
    n_threads: int = 1
    use_shipped_labels: bool = True
    distance_cutoff: float = 1.2
    angle_cutoff: float = 0.3
    n_points: int = 100
    step: float = 0.5
    dedup_threshold: float = 0.015
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    protocols: list[Protocol] = field(default_factory=_default_protocols)
    archs: list[str] = field(default_factory=lambda: ["mlp", "cnn"])
    n_models: int = 10
    n_boot: int = 10
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    class_weight: str | None = "balanced"
    lr_schedule: str = "cosine"
    shifts: list[float] = field(default_factory=lambda: [-2.0, -1.0, 1.0, 2.0])
    noise_sigma: float = 0.03
    pre_edge_ablation: bool = True
    pre_edge_protocols: list[str] = field(default_factory=lambda: ["a"])
    robustness: bool = True
    robustness_protocol: str = "a"
    robustness_models: int = 3
    eval_shifts: list[float] = field(default_factory=lambda: [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
    eval_sigmas: list[float] = field(default_factory=lambda: [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1])
    regression_targets: list[str] = field(default_factory=lambda: ["oxidation_state", "coordination_number"])
    n_ensemble: int = 8
    regression_epochs: int = 50
    regression_noise_copies: int = 1
    calibrate_std: bool = True
    regression_arch: str = "mlp"
    ship_protocol: str = "b"
    ship_arch: str = "mlp"
    experimental: str = field(default_factory=default_experimental_path)

    def __post_init__(self) -> None:
        self.protocols = [p if isinstance(p, Protocol) else Protocol(**p) for p in self.protocols]
        self.validate()

    def validate(self, source: str = "config") -> None:
        """Check values; raise :class:`DataError` naming the field."""
        def bad(name, msg):
            raise DataError(f"{source}: field {name!r}: {msg}")

        for a in self.archs:
            if a not in ("mlp", "cnn"):
                bad("archs", f"unknown architecture {a!r}, expected 'mlp' or 'cnn'")
        if self.class_weight not in (None, "balanced"):
            bad("class_weight", f"expected null or 'balanced', got {self.class_weight!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            bad("lr_schedule", f"expected 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.regression_arch not in ("mlp", "cnn"):
            bad("regression_arch", f"expected 'mlp' or 'cnn', got {self.regression_arch!r}")
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6:
            bad("split_fractions", f"expected three fractions summing to 1, got {self.split_fractions}")
        for name in ("n_models", "n_boot", "epochs", "regression_epochs", "batch_size", "n_points", "robustness_models", "n_jobs"):
            if int(getattr(self, name)) < 1:
                bad(name, f"must be >= 1, got {getattr(self, name)}")
        if self.n_ensemble < 2:
            bad("n_ensemble", "an ensemble needs at least 2 members")
        for t in self.regression_targets:
            if t not in ("oxidation_state", "coordination_number"):
                bad("regression_targets", f"unknown target {t!r}")
        names = [p.name for p in self.protocols]
        if len(set(names)) != len(names):
            bad("protocols", f"duplicate protocol names {names}")
        for n in (self.robustness_protocol, self.ship_protocol):
            if n not in names:
                bad("robustness_protocol/ship_protocol", f"{n!r} is not one of the protocols {names}")
        if self.ship_arch not in self.archs:
            bad("ship_arch", f"{self.ship_arch!r} is not trained (archs = {self.archs})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable resolved configuration."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "LocalConfig":
        """Build from a dictionary; unknown keys raise :class:`DataError` naming ``source``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"{source}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            cfg = cls(**d)
        except TypeError as exc:
            raise DataError(f"{source}: {exc}") from None
        cfg.validate(source)
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> "LocalConfig":
        """Read a ``.json`` or ``.toml`` configuration file."""
        from xasml.config import read_config_file

        return cls.from_dict(read_config_file(path), source=str(path))

    @staticmethod
    def defaults() -> dict[str, Any]:
        """Default value of every option."""
        out = {}
        for f in fields(LocalConfig):
            if f.default is not MISSING:
                out[f.name] = f.default
            else:
                out[f.name] = f.default_factory()  # type: ignore[misc]
        out["protocols"] = [asdict(p) for p in out["protocols"]]
        return out

    @classmethod
    def paper(cls, **overrides: Any) -> "LocalConfig":
        """The classifier training of Carbone et al. (2019), §II.C, exactly: plain cross-entropy,
        constant Adam step 1e-3, 50 epochs, batch 32 (the defaults may differ where a choice beat
        it on the validation split; see docs/local.md)."""
        d = dict(PAPER_TRAINING)
        d.update(overrides)
        return cls(**d)

    @classmethod
    def quick(cls, **overrides: Any) -> "LocalConfig":
        """A small configuration for tests and smoke runs (few epochs and models, no robustness)."""
        d = dict(epochs=3, regression_epochs=3, n_models=2, n_boot=2, n_ensemble=2, robustness_models=1, robustness=False,
                 pre_edge_ablation=False, n_jobs=1, n_threads=1, experimental="")
        d.update(overrides)
        return cls(**d)
