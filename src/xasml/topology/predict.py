"""``xasml topology predict``: the probability that a compound is topological, from its spectra.

Inputs are either spectrum files of one compound (any subset of its elements; FEFF
``xmu.dat`` = computed, XDI = measured) or one compound folder in the ``feff10-topology-v0``
layout. Computed spectra go straight onto the model's grids; measured spectra first go
through the paper's preprocessing (linear pre-edge subtraction, arctangent edge-step fit and
scaling by 1/a1, energy shift matching the arctangent areas with the mean computed spectrum
of the same absorber; Andrejevic et al. 2022, Experimental Section, Figure S10) via
:func:`xasml.preprocess.normalize.preprocess_measured`. Site spectra of one element are
averaged (multiplicity-weighted when ``material.json`` gives multiplicities). Elements the
model never saw are ignored and listed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import DataError


class TopologyPredictor:
    """A saved topology model with its featuriser (grids, standardiser, reference spectra).

    Parameters
    ----------
    model_dir : str or Path, optional
        A model folder (``estimator.json``, ``weights.safetensors``, ``topology.json``) or a run
        folder (``models/topology_net`` is used). Default: the pretrained model shipped with
        xasml.

    Raises
    ------
    DataError
        If the folder holds no topology model.
    """

    def __init__(self, model_dir: str | Path | None = None):
        from xasml.datasets.topology import TopologyFeaturizer
        from xasml.models.validate import load_checked_estimator, read_model_json
        from xasml.topology.run import BUNDLED_MODEL

        d = Path(model_dir) if model_dir is not None else BUNDLED_MODEL
        if (d / "models" / "topology_net" / "estimator.json").exists():
            d = d / "models" / "topology_net"
        meta = d / "topology.json"
        if not (d / "estimator.json").exists() or not meta.exists():
            raise DataError(f"{d}: not a topology model folder (needs estimator.json and topology.json; "
                            f"pass a run folder or its models/<name> folder)")
        self.path = d
        self.meta = read_model_json(meta, "the topology.json")
        try:
            self.featurizer = TopologyFeaturizer.from_dict(self.meta["featurizer"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{meta}: malformed field 'featurizer' ({type(exc).__name__}: {exc})") from None
        for el, ref in self.featurizer.reference_.items():
            grid = self.featurizer.grids_.get(el)
            if grid is None or ref.shape != (int(grid.n_points),) or not np.isfinite(ref).all():
                raise DataError(f"{meta}: field 'featurizer.reference.{el}' has {ref.size} values; expected "
                                f"{getattr(grid, 'n_points', '?')} finite values, one per grid point")
        self.model = load_checked_estimator(d)

    @property
    def elements(self) -> list[str]:
        """Absorbing elements the model knows."""
        return self.featurizer.elements_

    def _read(self, path: Path, measured: bool | None) -> list[tuple[Any, bool]]:
        """Read one spectrum file; returns [(Spectrum, is_measured), ...].

        The format is detected from the content (:func:`xasml.io.reader.detect_format`): XDI
        files are measured spectra, FEFF ``xmu.dat`` and Materials Project documents computed
        ones, unless ``measured`` forces either.
        """
        from xasml.io.reader import detect_format, read_spectrum

        fmt = detect_format(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = read_spectrum(path)
        spectra = got if isinstance(got, list) else [got]
        is_measured = (fmt == "xdi") if measured is None else bool(measured)
        return [(s, is_measured) for s in spectra]

    def predict_paths(self, paths: Sequence[str | Path], measured: bool | None = None,
                      compound: str | None = None) -> dict:
        """Predict from spectrum files of one compound, or from one compound folder.

        Parameters
        ----------
        paths : sequence of str or Path
            Spectrum files (``xmu.dat``, XDI, ...) or a single compound folder.
        measured : bool, optional
            Force measured (True) or computed (False) handling; default: XDI and other
            non-FEFF files are measured, FEFF ``xmu.dat`` computed.
        compound : str, optional
            Name of the compound the files belong to. Required to group two or more files of
            the same element (they are then averaged as sites of that compound); without it,
            such files are refused, since they usually come from different compounds, unless
            they are site folders of one compound (``<compound>/FEFF-XANES/<idx>_<El>/xmu.dat``).

        Returns
        -------
        dict
            ``probability`` (float, of the topological class), ``topological`` (bool),
            ``threshold``, ``elements`` (used), ``elements_ignored``, ``inputs`` (per file:
            path, element, edge, kind and, for measured spectra, the ``preprocessing`` record
            with the fitted pre-edge line, a1, a2, a3 and the energy shift), ``model``.

        Raises
        ------
        DataError, SpectrumError
            If nothing usable remains (the cause first: e.g. an L3-edge file, the model uses K
            edges), a file is invalid (named), or two files of one element are given without
            ``compound``.
        """
        from xasml.datasets.topology import (
            compound_from_spectra,
            read_topology_compound,
        )

        paths = [Path(p) for p in paths]
        if not paths:
            raise DataError("no input: give spectrum files or one compound folder")
        inputs: list[dict] = []
        spectra = []
        ignored: set[str] = set()
        if len(paths) == 1 and paths[0].is_dir():
            sites, meta = read_topology_compound(paths[0])
            material_id = str(meta.get("key", paths[0].name))
            for s in sites:
                inputs.append({"path": s.source, "element": s.absorbing_element, "edge": s.edge, "kind": "computed",
                               "multiplicity": s.multiplicity})
            spectra = list(sites)
        else:
            material_id = compound or "input"
            first_of: dict[str, Path] = {}
            for p in paths:
                if p.is_dir():
                    raise DataError(f"{p}: a folder can only be given alone (one compound folder)")
                for s, is_measured in self._read(p, measured):
                    rec: dict[str, Any] = {"path": str(p), "element": s.absorbing_element, "edge": s.edge,
                                           "kind": "measured" if is_measured else "computed"}
                    inputs.append(rec)
                    el = s.absorbing_element
                    if compound is None and el in first_of and first_of[el] != p and not _sites_of_one_compound(
                            first_of[el], p):
                        raise DataError(f"{p}: a second {el} spectrum ({first_of[el]} is {el} too); files given "
                                        "together are one compound with one spectrum per element: predict "
                                        "each file separately, or pass --compound NAME to average them as "
                                        "sites of one compound")
                    first_of.setdefault(el, p)
                    if s.edge != "K":
                        rec["ignored"] = f"{s.edge} edge: the model uses K edges"
                        ignored.add(s.absorbing_element)
                        continue
                    if s.absorbing_element not in self.featurizer.grids_:
                        rec["ignored"] = "element not in the training data"
                        ignored.add(s.absorbing_element)
                        continue
                    if is_measured:
                        s, record = self.preprocess_measured(s)
                        rec["preprocessing"] = record
                    spectra.append(s)
        compound = compound_from_spectra(spectra, material_id=material_id)
        known = [el for el in compound.elements if el in self.featurizer.grids_]
        ignored |= set(compound.elements) - set(known)
        for r in inputs:
            if r["element"] in ignored and "ignored" not in r:
                r["ignored"] = "element not in the training data"
        other_edge = [r for r in inputs if r.get("edge") not in (None, "K")]
        if known:
            for r in other_edge:
                warnings.warn(f"{r['path']}: {r['element']} {r['edge']} edge ignored; the model uses K-edge spectra")
        else:
            if other_edge:
                r = other_edge[0]
                raise DataError(f"{r['path']}: {r['element']} {r['edge']} edge; the topology model uses K-edge "
                                f"spectra (expected K-edge files of the compound's elements; known: "
                                f"{', '.join(self.elements)})")
            raise DataError(f"{', '.join(str(p) for p in paths)}: none of the input elements ({', '.join(sorted(ignored)) or 'none'}) is known to the "
                            f"model; known: {', '.join(self.elements)}")
        data = self.featurizer.transform([compound])
        try:
            p = float(self.model.predict_proba(data)[0, 1])
            thr = float(self.model.threshold_)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # parameters the network cannot run with
            raise DataError(f"{self.path}: the model files do not fit together ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}); expected estimator.json, weights.safetensors "
                            "and topology.json saved together by xasml") from None
        if not (np.isfinite(p) and np.isfinite(thr)):
            raise DataError(f"{self.path}: the model gives a non-finite probability; its weights or topology.json "
                            "are corrupt")
        return {"probability": p, "topological": bool(p >= thr), "threshold": thr, "elements": data.elements[0],
                "elements_ignored": sorted(ignored), "material_id": material_id, "inputs": inputs,
                "model": str(self.path), "model_name": self.meta.get("model")}

    def preprocess_measured(self, spectrum):
        """Apply the paper's measured-spectrum preprocessing against this model's reference spectrum.

        Returns
        -------
        (Spectrum, dict)
            The aligned, step-normalised spectrum and the record of fitted parameters.
        """
        from xasml.preprocess.normalize import preprocess_measured

        el = spectrum.absorbing_element
        grid = self.featurizer.grids_[el]
        return preprocess_measured(spectrum, grid.energy, self.featurizer.reference_[el])


def _sites_of_one_compound(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are site spectra of one compound folder
    (``<compound>/FEFF-XANES/<index>_<El>/xmu.dat``, different sites)."""
    from xasml.io.feff import _SITE_DIR_RE

    return (a.parent != b.parent and a.parent.parent == b.parent.parent
            and bool(_SITE_DIR_RE.match(a.parent.name)) and bool(_SITE_DIR_RE.match(b.parent.name)))


def predict_topology(paths: Sequence[str | Path], model_dir: str | Path | None = None,
                     measured: bool | None = None, compound: str | None = None) -> dict:
    """Probability that the compound whose spectra are ``paths`` is topological.

    See :meth:`TopologyPredictor.predict_paths` for the inputs (``compound`` groups files of
    one element), the returned dict and the errors.
    """
    return TopologyPredictor(model_dir).predict_paths(paths, measured=measured, compound=compound)


def format_prediction(res: dict) -> str:
    """Human-readable lines for a prediction dict."""
    cls = "topological" if res["topological"] else "trivial"
    lines = [f"P(topological) = {res['probability']:.3f}  ->  {cls} (threshold {res['threshold']:.3f})",
             f"elements used: {', '.join(res['elements'])}"]
    if res["elements_ignored"]:
        lines.append(f"elements ignored: {', '.join(res['elements_ignored'])}")
    for r in res["inputs"]:
        if "preprocessing" in r:
            pp = r["preprocessing"]
            lines.append(f"  {r['path']}: measured {r['element']} K; a1={pp['a1']:.4g} a2={pp['a2']:.4g} "
                         f"a3={pp['a3']:.2f} eV, shift {pp['shift_eV']:+.2f} eV")
    lines.append(f"model: {res['model']}")
    return "\n".join(lines)
