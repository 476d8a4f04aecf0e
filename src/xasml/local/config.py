"""Configuration of ``xasml local run``: every option with its default and a one-line description.

:class:`LocalConfig` is a :class:`~xasml.config.XasmlConfig`: a configuration is a JSON or TOML
file whose keys are its fields (unknown keys, wrong types and values out of range are one error
line naming the file and the field). Defaults reproduce Carbone et al., Phys. Rev. Materials 3,
033604 (2019) for one absorbing element, with two protocols: (a) oxide sites, classes T:4, S:5,
O:6 (the paper's); (b) every environment with >= 50 sites. Nothing here is specific to Cu:
``element`` and the protocols' class sets are options.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from xasml.config import XasmlConfig
from xasml.datasets.sites import default_data_path
from xasml.utils import shared_data_dir

__all__ = ["HELP", "PAPER_TRAINING", "QUICK", "LocalConfig", "Protocol", "default_experimental_path"]


def default_experimental_path() -> str:
    """``$XASML_EXPERIMENTAL`` if set, else ``../shared/data/experimental`` relative to the repository."""
    return os.environ.get("XASML_EXPERIMENTAL", str(shared_data_dir() / "experimental"))


class Protocol(XasmlConfig):
    """A classification protocol: which sites and which classes (one entry of ``protocols``)."""

    name: str = Field(description="short name used in file names ('a')")
    classes: list[str] | None = Field(None, description="ChemEnv symbols to classify; null = every environment "
                                                        "with at least min_count sites")
    min_count: int = Field(50, ge=0, description="threshold when classes is null")
    ligands: list[str] | None = Field(None, description="keep only sites whose neighbours are all of these "
                                                        "elements (['O']: oxides)")
    description: str = Field("", description="one line shown in the report")


def _default_protocols() -> list[Protocol]:
    return [Protocol(name="a", classes=["T:4", "S:5", "O:6"], min_count=0, ligands=["O"],
                     description="oxide sites, T:4 / S:5 / O:6 (Carbone et al. 2019)"),
            Protocol(name="b", classes=None, min_count=50, ligands=None,
                     description="every environment with at least 50 sites")]


Arch = Literal["mlp", "cnn"]


class LocalConfig(XasmlConfig):
    """Every option of ``xasml local run`` (:data:`HELP`: one line on each)."""

    data: str = Field(default_factory=default_data_path,
                      description="data folder with <material>/FEFF-XANES/<index>_<El>/xmu.dat and POSCAR "
                                  "(default $XASML_DATA or ../shared/data/omnixas-cu-feff)")
    element: str = Field("Cu", description="absorbing element")
    edge: str = Field("K", description="absorption edge")
    n_jobs: int = Field(2, ge=1, description="worker processes for site labelling")
    n_threads: int = Field(1, description="torch threads for training (1 is fastest for these small networks, "
                                          "and on a shared machine)")
    use_shipped_labels: bool = Field(True, description="reuse the label table shipped in xasml/data/local when the "
                                                       "structure files match (SHA-1)")
    distance_cutoff: float = Field(1.2, description="ChemEnv: neighbours beyond this x nearest-neighbour distance "
                                                    "are ignored (paper: 1.2)")
    angle_cutoff: float = Field(0.3, description="ChemEnv SimplestChemenvStrategy solid-angle cutoff")
    n_points: int = Field(100, ge=1, description="grid points (paper: 100)")
    step: float = Field(0.5, description="grid spacing in eV (paper: ~0.5)")
    dedup_threshold: float = Field(0.015, description="drop one of two spectra with mean absolute difference below "
                                                      "this (paper: 0.015)")
    split_fractions: list[float] = Field(default_factory=lambda: [0.8, 0.1, 0.1],
                                         description="train / validation / test fractions (grouped by material, "
                                                     "stratified by environment)")
    seed: int = Field(0, description="seed of splits, initialisation, augmentation noise and bootstrap")
    protocols: list[Protocol] = Field(default_factory=_default_protocols,
                                      description="classification protocols (name, classes or min_count, ligands)")
    archs: list[Arch] = Field(default_factory=lambda: ["mlp", "cnn"],
                              description="classifier architectures to train: mlp and/or cnn")
    n_models: int = Field(10, ge=1, description="independently trained classifiers per architecture (std over them "
                                                "is reported; paper: 10)")
    n_boot: int = Field(10, ge=1, description="bootstrap resamples of the test split (one per trained model; "
                                              "paper: 10)")
    epochs: int = Field(100, ge=1, description="classifier training epochs (paper: 50; 100 with the cosine schedule "
                                               "chosen on the validation split)")
    batch_size: int = Field(32, ge=1, description="mini-batch size (paper: 32)")
    learning_rate: float = Field(1e-3, description="Adam learning rate")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="classifier loss weighting: 'balanced' (class c weighted by n / (k n_c); chosen on "
                                "the validation split) or null (plain cross-entropy, the paper)")
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="classifier learning-rate schedule: 'cosine' (annealed to 0 over the epochs; chosen on "
                              "the validation split) or 'constant' (the paper)")
    shifts: list[float] = Field(default_factory=lambda: [-2.0, -1.0, 1.0, 2.0],
                                description="training augmentation energy shifts in eV (paper: +-1, +-2)")
    noise_sigma: float = Field(0.03, description="Gaussian noise added to the shifted training copies, in units of "
                                                 "the spectrum maximum (paper: 0.03)")
    pre_edge_ablation: bool = Field(True, description="also train on the pre-edge region only (grid below the median "
                                                      "edge energy)")
    pre_edge_protocols: list[str] = Field(default_factory=lambda: ["a"],
                                          description="protocols that get the pre-edge ablation (the paper's is a)")
    robustness: bool = Field(True, description="F1 against test-set energy shift and noise, models with and without "
                                               "augmentation")
    robustness_protocol: str = Field("a", description="protocol used for the robustness study")
    robustness_models: int = Field(3, ge=1, description="models per variant in the robustness study")
    eval_shifts: list[float] = Field(default_factory=lambda: [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0],
                                     description="test-set energy shifts in eV for the robustness curve")
    eval_sigmas: list[float] = Field(default_factory=lambda: [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1],
                                     description="test-set noise levels for the robustness curve")
    regression_targets: list[Literal["oxidation_state", "coordination_number"]] = Field(
        default_factory=lambda: ["oxidation_state", "coordination_number"],
        description="site properties regressed by an ensemble (oxidation_state, coordination_number)")
    n_ensemble: int = Field(8, ge=2, description="members of each regression ensemble (mean = prediction, "
                                                 "std = uncertainty)")
    regression_epochs: int = Field(50, ge=1, description="training epochs of the regression ensemble members")
    regression_noise_copies: int = Field(1, description="noisy copies (sigma = noise_sigma) added to the regression "
                                                        "training set; no energy shifts, which would blur the "
                                                        "chemical shift")
    calibrate_std: bool = Field(True, description="scale the ensemble spread on the validation split so that "
                                                  "mean +- 2 std covers 95 % (raw coverage is reported too)")
    regression_arch: Arch = Field("mlp", description="architecture of the regression members (mlp or cnn)")
    ship_protocol: str = Field("b", description="protocol whose classifier becomes models/coordination (the model "
                                                "predict uses)")
    ship_arch: Arch = Field("mlp", description="architecture of models/coordination")
    experimental: str = Field(default_factory=default_experimental_path,
                              description="folder with measured spectra (xas-data-library/data/<El>/*.xdi, "
                                          "rfxas/experiment.csv); empty to skip")

    @field_validator("split_fractions")
    @classmethod
    def _three_fractions(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or abs(sum(v) - 1) > 1e-6:
            raise ValueError(f"expected three fractions summing to 1, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LocalConfig:
        names = [p.name for p in self.protocols]
        if len(set(names)) != len(names):
            raise ValueError(f"protocols: duplicate protocol names {names}")
        for key in ("robustness_protocol", "ship_protocol"):
            if getattr(self, key) not in names:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of the protocols {names}")
        if self.ship_arch not in self.archs:
            raise ValueError(f"ship_arch: {self.ship_arch!r} is not trained (archs = {self.archs})")
        return self

    @classmethod
    def paper(cls, **overrides: Any) -> LocalConfig:
        """The classifier training of Carbone et al. (2019), §II.C, exactly: plain cross-entropy,
        constant Adam step 1e-3, 50 epochs, batch 32 (the defaults may differ where a choice beat
        it on the validation split; see docs/local.md)."""
        return cls.from_dict({**PAPER_TRAINING, **overrides}, source="LocalConfig.paper()")

    @classmethod
    def quick(cls, **overrides: Any) -> LocalConfig:
        """A small configuration for tests and smoke runs (few epochs and models, no robustness)."""
        return cls.from_dict({**QUICK, **overrides}, source="LocalConfig.quick()")


#: one-line description of every option (shown by ``xasml local run --help`` and in docs/local.md)
HELP: dict[str, str] = LocalConfig.descriptions()

#: classifier training options of Carbone et al. (2019), §II.C (``xasml local run --paper``)
PAPER_TRAINING: dict[str, Any] = {"epochs": 50, "batch_size": 32, "learning_rate": 1e-3, "class_weight": None,
                                  "lr_schedule": "constant"}

#: the options ``--quick`` sets (:meth:`LocalConfig.quick`): few epochs and models, no robustness study
QUICK: dict[str, Any] = {"epochs": 3, "regression_epochs": 3, "n_models": 2, "n_boot": 2, "n_ensemble": 2,
                         "robustness_models": 1, "robustness": False, "pre_edge_ablation": False, "n_jobs": 1,
                         "n_threads": 1, "experimental": ""}
