"""``xasml topology predict``: the probability that a compound is topological, from its spectra.

Inputs are either spectrum files of one compound (any subset of its elements; FEFF
``xmu.dat`` and Materials Project documents = computed; XDI, Athena projects and plain column
files = measured) or one compound folder in the ``feff10-topology-v0`` layout. Computed spectra go straight onto the model's grids; measured spectra first go
through the paper's preprocessing (linear pre-edge subtraction, arctangent edge-step fit and
scaling by 1/a1, energy shift matching the arctangent areas with the mean computed spectrum
of the same absorber; Andrejevic et al. 2022, Experimental Section, Figure S10) via
:func:`xasml.preprocess.normalize.preprocess_measured`. Site spectra of one element are
averaged (multiplicity-weighted when ``material.json`` gives multiplicities). Elements the
model never saw are ignored and listed.

Measured spectra pass the physical checks of :func:`xasml.measure.core.check_measured` first
(the stated element and edge against the measured edge, the edge inside the scan): a
contradiction is an error naming the file, a doubt an entry of ``warnings``. The per-spectrum
area alignment is the paper's protocol and removes any chemical (valence) shift of the edge.

When the compound's formula is known (``formula``, or the XDI ``Sample.formula`` of the
inputs), elements without a K-edge spectrum are listed as ``missing_edges`` with a warning;
``atom_type_only`` always gives the probability of the paper's atom-type baseline (SVM-type:
RBF SVM on the multi-hot atom types, shipped in ``xasml/data/topology/atom_type``) over every
known element of the compound, which is what the network's answer should be compared with
when edges are missing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import DataError

#: formats read as measured spectra unless told otherwise
MEASURED_FORMATS = ("xdi", "athena", "columns")


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
        from xasml.models.validate import check_finite_values, load_checked_estimator, read_model_json
        from xasml.topology.run import BUNDLED_ATOM_TYPE_MODEL, BUNDLED_MODEL

        d = Path(model_dir) if model_dir is not None else BUNDLED_MODEL
        if (d / "models" / "topology_net" / "estimator.json").exists():
            d = d / "models" / "topology_net"
        meta = d / "topology.json"
        if not (d / "estimator.json").exists() or not meta.exists():
            raise DataError(f"{d}: not a topology model folder (needs estimator.json and topology.json; "
                            f"pass a run folder or its models/<name> folder)")
        self.path = d
        self.meta = read_model_json(meta, "the topology.json")
        if not isinstance(self.meta, dict):
            raise DataError(f"{meta}: a JSON {type(self.meta).__name__}, expected an object written by xasml")
        version = self.meta.get("xasml_version")
        if version is not None and not isinstance(version, str):
            raise DataError(f"{meta}: field 'xasml_version' is {version!r}; expected the version string of the xasml "
                            "that wrote the model")
        for key in ("featurizer", "seed"):
            check_finite_values(self.meta.get(key), str(meta), key)
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
        # the atom-type-only baseline: the run's own svm_type when the run folder has one, else the shipped one
        own = d.parent / "svm_type"
        self.atom_type_path = own if (own / "estimator.json").exists() else BUNDLED_ATOM_TYPE_MODEL
        self._atom_type = None

    @property
    def elements(self) -> list[str]:
        """Absorbing elements the model knows."""
        return self.featurizer.elements_

    def _read(self, path: Path, measured: bool | None, options: dict[str, Any], group: str | None,
              messages: list[str]) -> list[tuple[Any, bool]]:
        """Read one spectrum file; returns [(Spectrum, is_measured), ...].

        The format is detected from the content (:func:`xasml.io.reader.detect_format`): XDI,
        Athena projects and column files are measured spectra, FEFF ``xmu.dat`` and Materials
        Project documents computed ones, unless ``measured`` forces either. ``options``
        (``absorbing_element``, ``edge``, ``energy_col``, ``mu``) go to
        :func:`xasml.io.reader.read_spectrum`. The reader's warnings (XDI pedantry excepted)
        are appended to ``messages``. An Athena project gives its sample groups (reference
        channels left out); with several, ``group`` (a label) picks one.
        """
        from xasml.io.reader import detect_format, read_spectrum
        from xasml.io.xdi import XDIPedanticWarning

        fmt = detect_format(path)
        opts = {k: v for k, v in options.items() if v is not None}
        if fmt == "feff":
            opts = {k: v for k, v in opts.items() if k in ("absorbing_element", "edge")}
        elif fmt == "mp":
            opts = {}
        if fmt == "athena" and (opts.get("energy_col") is not None or opts.get("mu") is not None):
            raise DataError(f"{path}: an Athena project stores mu(E) per group; --energy-col/--mu are for column "
                            "files (use --group LABEL to choose a group)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = read_spectrum(path, **opts)
        pedantic = {str(w.message) for w in caught if issubclass(w.category, XDIPedanticWarning)}
        messages.extend(_with_source(str(w.message), path) for w in caught if str(w.message) not in pedantic)
        for m in pedantic:  # shown with xasml --verbose only, never in the result's warnings
            warnings.warn(m, XDIPedanticWarning, stacklevel=3)
        spectra = got if isinstance(got, list) else [got]
        if fmt == "athena":
            spectra = _athena_sample_group(path, spectra, group)
        elif group is not None:
            raise DataError(f"{path}: --group chooses a group of an Athena project; this file is {fmt}")
        for s in spectra:  # readers that only record their warnings (column files, Athena projects)
            messages.extend(_with_source(m, path) for m in s.metadata.get("warnings", [])
                            if m not in pedantic and not any(m.endswith(q) or q.endswith(m) for q in pedantic))
        is_measured = (fmt in MEASURED_FORMATS) if measured is None else bool(measured)
        return [(s, is_measured) for s in spectra]

    def predict_paths(self, paths: Sequence[str | Path], measured: bool | None = None,
                      compound: str | None = None, formula: str | None = None,
                      absorbing_element: str | None = None, edge: str | None = None,
                      energy_col: str | int | None = None, mu: str | int | None = None,
                      group: str | None = None, allow_incomplete: bool = False, scan: str | None = None) -> dict:
        """Predict from spectrum files of one compound, or from one compound folder.

        Parameters
        ----------
        paths : sequence of str or Path
            Spectrum files (``xmu.dat``, XDI, ...) or a single compound folder.
        measured : bool, optional
            Force measured (True) or computed (False) handling; default: XDI, Athena projects
            and column files are measured, FEFF ``xmu.dat`` and MP documents computed.
        compound : str, optional
            Name of the compound the files belong to. Required to group two or more files of
            the same element (they are then averaged as sites of that compound); without it,
            such files are refused, since they usually come from different compounds, unless
            they are site folders of one compound (``<compound>/FEFF-XANES/<idx>_<El>/xmu.dat``).
        formula : str, optional
            The compound's chemical formula (default: the XDI ``Sample.formula`` of the inputs,
            when they agree). Its elements without a K-edge spectrum are ``missing_edges``.
        absorbing_element, edge, energy_col, mu : optional
            Reader options for measured files that do not say
            (:func:`xasml.io.reader.read_spectrum`): the absorber, the edge, the energy column
            and μ (column name, 1-based index or expression such as ``ln(i0/it)``).
        scan : str, optional
            SPEC and HDF5/NeXus files with several scans: which one (default the last; ``--scan``).
        group : str, optional
            Label of the Athena-project group to use when a project holds several samples.
        allow_incomplete : bool
            Give the network's answer as the headline even when edges of the formula are missing
            (``status`` ``"incomplete-allowed"``). Default: withhold it (``"incomplete"``).

        Returns
        -------
        dict
            ``status``: ``"ok"``, ``"incomplete"`` (edges of the formula are missing: the
            headline ``probability`` and ``topological`` are None, withheld, and the network's
            value is only ``network_probability``; compare ``atom_type_only``) or
            ``"incomplete-allowed"`` (missing edges, headline given as asked);
            ``network_probability`` (float, always the network's output),
            ``probability`` (float, of the topological class, or None), ``topological`` (bool or None),
            ``threshold``, ``elements`` (used), ``elements_ignored``, ``inputs`` (per file:
            path, element, edge, kind and, for measured spectra, the ``preprocessing`` record
            with the fitted pre-edge line, a1, a2, a3 and the energy shift), ``model``,
            ``formula`` (or None), ``missing_edges`` (elements of the formula without a K-edge
            spectrum), ``atom_type_only`` (probability, topological, threshold, elements and
            model of the atom-type baseline) and ``warnings`` (doubts about the inputs and the
            answer, each naming the file where there is one).

        Raises
        ------
        DataError, SpectrumError
            If nothing usable remains (the cause first: e.g. an L3-edge file, the model uses K
            edges), a file is invalid (named), a measured file contradicts its stated element
            or holds no edge (:func:`xasml.measure.core.check_measured`), or two files of one
            element are given without ``compound``.
        """
        from xasml.datasets.topology import compound_from_spectra

        paths = [Path(p) for p in paths]
        if not paths:
            raise DataError("no input: give spectrum files or one compound folder")
        messages: list[str] = []
        material_id, inputs, spectra, ignored, stated_formulas = self._gather_inputs(
            paths, measured, compound, {"absorbing_element": absorbing_element, "edge": edge,
                                        "energy_col": energy_col, "mu": mu, "scan": scan}, group, messages)
        compound = compound_from_spectra(spectra, material_id=material_id)
        known = [el for el in compound.elements if el in self.featurizer.grids_]
        ignored |= set(compound.elements) - set(known)
        for r in inputs:
            if r["element"] in ignored and "ignored" not in r:
                r["ignored"] = "element not in the training data"
        other_edge = [r for r in inputs if r.get("edge") not in (None, "K")]
        if known:
            for r in other_edge:
                messages.append(f"{r['path']}: {r['element']} {r['edge']} edge ignored; the model uses K-edge spectra")
        else:
            if other_edge:
                r = other_edge[0]
                raise DataError(f"{r['path']}: {r['element']} {r['edge']} edge; the topology model uses K-edge "
                                f"spectra (expected K-edge files of the compound's elements; known: "
                                f"{', '.join(self.elements)})")
            raise DataError(f"{', '.join(str(p) for p in paths)}: none of the input elements ({', '.join(sorted(ignored)) or 'none'}) is known to the "
                            f"model; known: {', '.join(self.elements)}")
        data = self.featurizer.transform([compound])
        p, thr = self._network_probability(data)
        used = list(data.elements[0])
        formula, formula_elements = _resolve_formula(formula, stated_formulas, messages)
        missing = sorted(set(formula_elements) - set(used) - {"H"}, key=_z) if formula_elements else []
        atom_type = self.atom_type_probability(sorted(set(used) | set(formula_elements) - {"H"}, key=_z))
        if missing:
            messages.append(_missing_edges_message(formula, missing, used, p, atom_type))
        elif formula is None and len({r["element"] for r in inputs}) == 1 and not paths[0].is_dir():
            messages.append(f"{used[0]} is the only element given and the compound's formula is unknown (give "
                            f"--formula, or Sample.formula in the XDI header): if the compound has other elements, "
                            f"their missing edges leave the network close to the {used[0]} prior; atom-type-only "
                            f"probability {atom_type['probability']:.3f}")
        status = "ok" if not missing else ("incomplete-allowed" if allow_incomplete else "incomplete")
        if status == "incomplete":
            messages.append(f"headline withheld: the edges of {', '.join(missing)} are missing, so the network's "
                            f"{p:.3f} is not an answer for {formula} (the atom-type-only baseline over all its "
                            f"elements: {atom_type['probability']:.3f}); give their K-edge spectra, or "
                            "--allow-incomplete to take the network's value as the answer")
        for m in messages:
            warnings.warn(m, stacklevel=2)
        headline = status != "incomplete"
        return {"status": status, "network_probability": p,
                "probability": p if headline else None, "topological": bool(p >= thr) if headline else None,
                "threshold": thr, "elements": used,
                "elements_ignored": sorted(ignored), "material_id": material_id, "inputs": inputs,
                "model": str(self.path), "model_name": self.meta.get("model"), "formula": formula,
                "missing_edges": missing, "atom_type_only": atom_type,
                "warnings": list(dict.fromkeys(messages))}

    def _gather_inputs(self, paths: list[Path], measured: bool | None, compound: str | None, options: dict,
                       group: str | None, messages: list[str]) -> tuple[str, list[dict], list, set[str], dict[str, str]]:
        """The spectra of :meth:`predict_paths`: read, checked and (measured ones) preprocessed.

        Returns
        -------
        (material_id, inputs, spectra, ignored, stated_formulas)
            The compound's name, one record per input spectrum, the spectra the model can use,
            the elements left out (other edges, unknown elements) and the XDI ``Sample.formula``
            of each file that states one. Doubts are appended to ``messages``.

        Raises
        ------
        DataError, SpectrumError
            As :meth:`predict_paths`.
        """
        from xasml.datasets.topology import read_topology_compound

        inputs: list[dict] = []
        spectra = []
        ignored: set[str] = set()
        stated_formulas: dict[str, str] = {}
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
                for s, is_measured in self._read(p, measured, options, group, messages):
                    rec: dict[str, Any] = {"path": str(p), "element": s.absorbing_element, "edge": s.edge,
                                           "kind": "measured" if is_measured else "computed"}
                    if s.metadata.get("format") == "athena":
                        rec["group"] = s.metadata.get("label")
                    stated = (s.metadata.get("header") or {}).get("Sample.formula")
                    if stated and str(stated).strip():
                        stated_formulas[str(p)] = str(stated).strip()
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
                        from xasml.measure.core import check_measured

                        e0, doubts = check_measured(s)  # contradictions raise, naming the file
                        messages.extend(doubts)
                        s, record = self.preprocess_measured(s)
                        record["e0_measured"] = e0
                        messages.extend(_with_source(w, p) for w in record.get("warnings", []))
                        rec["preprocessing"] = record
                    spectra.append(s)
        return material_id, inputs, spectra, ignored, stated_formulas

    def _network_probability(self, data) -> tuple[float, float]:
        """(probability of the topological class, threshold) of one featurised compound.

        Raises
        ------
        DataError
            If the model files do not fit together or give a non-finite probability.
        """
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
        return p, thr

    def atom_type_probability(self, elements: Sequence[str]) -> dict:
        """The atom-type-only baseline (paper: SVM-type) for a compound of ``elements``.

        Elements the network never saw in training are left out (listed in ``left_out``).

        Returns
        -------
        dict
            ``probability`` (topological), ``topological``, ``threshold``, ``elements`` (used),
            ``left_out`` and ``model`` (folder).
        """
        from xasml.datasets.topology import TopologyData
        from xasml.models.validate import load_checked_estimator
        from xasml.spectrum import atomic_number

        if self._atom_type is None:
            self._atom_type = load_checked_estimator(self.atom_type_path)
        els = [e for e in elements if e in self.featurizer.grids_]
        n = max(len(els), 1)
        Z = np.zeros((1, n), dtype=np.int64)
        mask = np.zeros((1, n), dtype=bool)
        Z[0, :len(els)] = [atomic_number(e) for e in els]
        mask[0, :len(els)] = True
        data = TopologyData(np.zeros((1, n, 1), dtype=np.float32), Z, mask, np.array([-1]), ["input"])
        pa = float(self._atom_type.predict_proba(data)[0, 1])
        ta = float(self._atom_type.threshold_)
        return {"probability": pa, "topological": bool(pa >= ta), "threshold": ta, "elements": els,
                "left_out": [e for e in elements if e not in els], "model": str(self.atom_type_path),
                "model_name": "svm_type"}

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


def _z(el: str) -> int:
    from xasml.spectrum import atomic_number

    return atomic_number(el)


def _with_source(message: str, path) -> str:
    """``message`` prefixed with the file unless it already names it."""
    return message if str(path) in message else f"{path}: {message}"


def _athena_sample_group(path: Path, spectra: list, group: str | None) -> list:
    """The sample group of an Athena project to predict from (reference channels left out).

    Raises
    ------
    DataError
        When ``group`` names no group, or the project holds several sample groups and
        ``group`` does not choose one (the labels are listed).
    """
    samples = [s for s in spectra if not s.metadata.get("is_reference_channel")] or spectra
    labels = [str(s.metadata.get("label")) for s in samples]
    if group is not None:
        chosen = [s for s in spectra if str(s.metadata.get("label")) == group]
        if not chosen:
            raise DataError(f"{path}: no group labelled {group!r}; groups: "
                            f"{', '.join(repr(str(s.metadata.get('label'))) for s in spectra)}")
        return chosen[:1]
    if len(samples) > 1:
        raise DataError(f"{path}: the Athena project holds {len(samples)} samples ({', '.join(map(repr, labels))}); "
                        "a compound is predicted from one spectrum per element: choose one with --group LABEL")
    return samples


def _formula_elements(formula: str, source: str) -> list[str]:
    """Elements of a chemical formula (pymatgen's parser), by atomic number.

    Raises
    ------
    DataError
        Naming ``source`` when the formula cannot be parsed.
    """
    from pymatgen.core import Composition

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(formula)
        els = sorted({str(e.symbol) for e in comp.elements}, key=_z)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{source}: formula {formula!r} cannot be parsed ({exc}); expected e.g. 'Fe2O3'") from None
    if not els:
        raise DataError(f"{source}: formula {formula!r} has no elements; expected e.g. 'Fe2O3'")
    return els


def _resolve_formula(formula: str | None, stated: dict[str, str], messages: list[str]) -> tuple[str | None, list[str]]:
    """The compound's formula and elements: ``formula`` if given, else the files' ``Sample.formula``
    when they agree and parse (otherwise a warning and no formula)."""
    if formula is not None:
        return formula, _formula_elements(formula, "--formula")
    if not stated:
        return None, []
    parsed: dict[str, tuple[str, list[str]]] = {}
    for path, f in stated.items():
        f = re.split(r"[\s,;]", f.strip())[0]
        try:
            parsed[path] = (f, _formula_elements(f, path))
        except DataError:
            messages.append(f"{path}: Sample.formula {stated[path]!r} is not a chemical formula; ignored "
                            "(give --formula)")
    sets = {tuple(els) for _, els in parsed.values()}
    if len(sets) > 1:
        messages.append("the files state different formulas (" + ", ".join(f"{p}: {f}" for p, (f, _) in parsed.items())
                        + "): are they one compound? missing edges are not checked (give --formula)")
        return None, []
    if not parsed:
        return None, []
    f, els = next(iter(parsed.values()))
    return f, els


def _missing_edges_message(formula: str, missing: list[str], used: list[str], p: float, atom_type: dict) -> str:
    return (f"missing edges: {', '.join(missing)} (the compound {formula} has "
            f"{', '.join(sorted(set(missing) | set(used), key=_z))}; K-edge spectra given for {', '.join(used)}): "
            f"the network's probability {p:.3f} uses only {', '.join(used)} and leans on that element's prior; "
            f"the atom-type-only baseline over all its known elements gives {atom_type['probability']:.3f}")


def predict_topology(paths: Sequence[str | Path], model_dir: str | Path | None = None,
                     measured: bool | None = None, compound: str | None = None, **options: Any) -> dict:
    """Probability that the compound whose spectra are ``paths`` is topological.

    See :meth:`TopologyPredictor.predict_paths` for the inputs (``compound`` groups files of
    one element; ``options``: ``formula``, ``absorbing_element``, ``edge``, ``energy_col``,
    ``mu``, ``scan``, ``group``), the returned dict and the errors.
    """
    return TopologyPredictor(model_dir).predict_paths(paths, measured=measured, compound=compound, **options)


def format_prediction(res: dict) -> str:
    """Human-readable lines for a prediction dict (:meth:`TopologyPredictor.predict_paths`): the
    headline (or why it is withheld), the elements, the atom-type-only probability, the measured
    inputs' preprocessing and the model (the warnings go to stderr, as Python warnings)."""
    if res.get("probability") is None:
        p_net = res.get("network_probability")
        lines = [f"P(topological): withheld (status {res.get('status')}: edges missing; the network saw "
                 f"{', '.join(res['elements'])} only and gives {p_net:.3f}, which is not an answer for "
                 f"{res.get('formula')}; --allow-incomplete takes it as one)",
                 f"elements used: {', '.join(res['elements'])}"]
    else:
        cls = "topological" if res["topological"] else "trivial"
        lines = [f"P(topological) = {res['probability']:.3f}  ->  {cls} (threshold {res['threshold']:.3f})"
                 + ("  [edges missing: --allow-incomplete]" if res.get("status") == "incomplete-allowed" else ""),
                 f"elements used: {', '.join(res['elements'])}"]
    if res["elements_ignored"]:
        lines.append(f"elements ignored: {', '.join(res['elements_ignored'])}")
    at = res.get("atom_type_only")
    if res.get("missing_edges"):
        lines.append(f"missing edges: {', '.join(res['missing_edges'])} (compound {res['formula']}): the network "
                     f"saw {', '.join(res['elements'])} only")
    if at:
        cls_at = "topological" if at["topological"] else "trivial"
        lines.append(f"atom-type only (SVM-type, {', '.join(at['elements'])}): P(topological) = "
                     f"{at['probability']:.3f}  ->  {cls_at} (threshold {at['threshold']:.3f})")
    for r in res["inputs"]:
        if "preprocessing" in r:
            pp = r["preprocessing"]
            grp = f" [{r['group']}]" if r.get("group") else ""
            lines.append(f"  {r['path']}{grp}: measured {r['element']} K; a1={pp['a1']:.4g} a2={pp['a2']:.4g} "
                         f"a3={pp['a3']:.2f} eV, shift {pp['shift_eV']:+.2f} eV")
    lines.append(f"model: {res['model']}")
    return "\n".join(lines)
