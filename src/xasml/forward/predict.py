"""A trained forward model (descriptor + MLP + grid + broadening) and prediction from structures.

A model folder holds::

    <dir>/forward.json          element, edge, energy grid, descriptor parameters, broadening of the
                                training targets, data source and metrics summary
    <dir>/estimator.json        the MLP's parameters and fitted preprocessing (JSON)
    <dir>/weights.safetensors   the MLP's weights (no pickle)

``xasml forward predict`` loads one (default: the shipped model of the structure's absorber) and
prints one JSON object per structure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xasml.descriptors.wacsf import WACSF, site_environment, structure_environment
from xasml.errors import DataError
from xasml.spectrum import atomic_number
from xasml.models.validate import check_element, check_finite_values, load_checked_estimator, read_model_json
from xasml.preprocess.broaden import Broadening
from xasml.utils import atomic_write_json

__all__ = ["ForwardModel", "shipped_model_dir", "predict_files", "iter_predictions"]

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "forward"


def shipped_model_dir(element: str) -> Path:
    """Folder of the model shipped for ``element`` (``xasml/data/forward/<El>``).

    Raises
    ------
    DataError
        If no model is shipped for that element.
    """
    d = SHIPPED / element
    if not (d / "forward.json").exists():
        have = sorted(p.name for p in SHIPPED.iterdir() if (p / "forward.json").exists()) if SHIPPED.exists() else []
        raise DataError(f"no shipped forward model for {element} (shipped: {', '.join(have) or 'none'}); "
                        "pass --model DIR")
    return d


@dataclass
class ForwardModel:
    """Structure -> spectrum: wACSF descriptor, XANESNET MLP, energy grid and target broadening.

    Parameters
    ----------
    estimator : XanesnetMLP
        Fitted network.
    descriptor : WACSF or None
        Descriptor the network was trained on (None: only precomputed descriptors accepted).
    energy : ndarray, shape (n_points,)
        Absolute energies (eV) of the predicted spectrum.
    element, edge : str
        Absorber and edge.
    broadening : Broadening
        Broadening that was applied to the training targets (hence present in predictions).
    info : dict
        Provenance (data source, metrics, training time, attribution).
    """

    estimator: Any
    descriptor: WACSF | None
    energy: np.ndarray
    element: str
    edge: str = "K"
    broadening: Broadening = field(default_factory=Broadening)
    info: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the model folder (see module docstring); returns it."""
        path = Path(path)
        self.estimator.save(path)
        atomic_write_json(path / "forward.json", {
            "format": "xasml-forward-model", "version": 1, "element": self.element, "edge": self.edge,
            "energy": np.asarray(self.energy, dtype=float).tolist(),
            "descriptor": {"name": "wacsf", **self.descriptor.to_dict()} if self.descriptor else None,
            "broadening": self.broadening.to_dict(), "info": self.info})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ForwardModel":
        """Read a model folder written by :meth:`save`.

        Raises
        ------
        DataError
            Naming the file: ``forward.json`` missing or malformed, a non-finite or unsorted
            energy list, estimator files that fail :func:`xasml.models.validate.load_checked_estimator`,
            or parts that do not fit together (energies vs network outputs, descriptor size vs
            network inputs).
        """
        path = Path(path)
        meta_path = path / "forward.json"
        if not meta_path.exists():
            raise DataError(f"{path}: not a forward model folder (no forward.json)")
        meta = read_model_json(meta_path, "the forward.json")
        estimator = load_checked_estimator(path)
        try:
            if not isinstance(meta, dict):
                raise TypeError("expected a JSON object")
            desc = meta.get("descriptor")
            if desc:
                desc = {k: v for k, v in desc.items() if k != "name"}
            energy = np.asarray(meta["energy"], dtype=float)
            model = cls(estimator, WACSF.from_dict(desc) if desc else None, energy,
                        str(meta["element"]), meta.get("edge", "K"), Broadening.from_dict(meta.get("broadening")),
                        meta.get("info", {}))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DataError(f"{meta_path}: malformed forward model description ({type(exc).__name__}: {exc})") from None
        check_element(model.element, meta_path)
        check_finite_values(meta.get("broadening"), str(meta_path), "broadening")
        check_finite_values(meta.get("descriptor"), str(meta_path), "descriptor")
        if energy.ndim != 1 or len(energy) < 2 or not np.isfinite(energy).all() or np.any(np.diff(energy) <= 0):
            raise DataError(f"{meta_path}: field 'energy' must be at least 2 finite, increasing energies (eV)")
        model._check_shapes(meta_path)
        return model

    def _check_shapes(self, meta_path: Path) -> None:
        """A dry run on one zero descriptor: the network must accept the descriptor's features and
        return one finite value per energy of ``forward.json``."""
        n_in = getattr(self.estimator, "n_features_in_", None)
        if self.descriptor is not None:
            w = self.descriptor
            try:  # featurise a two-atom environment of the model's absorber
                x = w.from_environments([site_environment([atomic_number(self.element), 8], np.array([[0.0, 0, 0], [1.9, 0, 0]]),
                                                          0, w.r_cut)])
                n_desc = int(w.n_features)
                ok = x.shape == (1, n_desc) and np.isfinite(x).all()
            except Exception as exc:  # parameters that do not make a descriptor
                raise DataError(f"{meta_path}: field 'descriptor' does not make a valid wACSF descriptor "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None
            if not ok:
                raise DataError(f"{meta_path}: field 'descriptor' gives non-finite features; expected the "
                                "descriptor parameters saved by xasml")
            if n_in is not None and n_desc is not None and int(n_in) != n_desc:
                raise DataError(f"{meta_path}: the descriptor gives {n_desc} features but the network takes "
                                f"{int(n_in)}; expected the forward.json saved with these weights")
        if n_in is None:
            return
        try:
            out = np.asarray(self.predict_descriptors(np.zeros((1, int(n_in)))))
        except Exception as exc:  # shapes that do not fit the network
            raise DataError(f"{meta_path.parent}: the model files do not fit together ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]})") from None
        if out.shape[-1] != len(self.energy):
            raise DataError(f"{meta_path}: field 'energy' has {len(self.energy)} values but the network predicts "
                            f"{out.shape[-1]}; expected one energy per predicted point")
        if not np.isfinite(out).all():
            raise DataError(f"{meta_path.parent}: the model predicts non-finite values; the weights are corrupt")

    # -- prediction --------------------------------------------------------------------------
    def predict_descriptors(self, X: np.ndarray) -> np.ndarray:
        """Spectra (n, n_points) from descriptors (n, n_features)."""
        return self.estimator.predict(np.atleast_2d(X))

    def _need_descriptor(self) -> WACSF:
        if self.descriptor is None:
            raise DataError("this model was trained on precomputed descriptors; it cannot featurise structures")
        return self.descriptor

    def predict_molecule(self, numbers, positions, absorbing_index: int = 0) -> np.ndarray:
        """Spectrum (n_points,) of the absorber ``absorbing_index`` of a molecule (Å coordinates)."""
        w = self._need_descriptor()
        if int(numbers[absorbing_index]) != atomic_number(self.element):
            raise DataError(f"atom {absorbing_index} has Z={int(numbers[absorbing_index])}, but this model "
                            f"predicts {self.element} (Z={atomic_number(self.element)}) spectra")
        return self.predict_descriptors(w.from_environments(
            [site_environment(numbers, positions, absorbing_index, w.r_cut)]))[0]

    def predict_structure(self, structure, absorbing_index: int) -> np.ndarray:
        """Spectrum (n_points,) of site ``absorbing_index`` of a periodic pymatgen ``Structure``."""
        w = self._need_descriptor()
        if not 0 <= absorbing_index < len(structure):
            raise DataError(f"absorbing index {absorbing_index} out of range for {len(structure)} sites")
        sym = structure[absorbing_index].specie.symbol
        if sym != self.element:
            raise DataError(f"site {absorbing_index} is {sym}, but this model predicts {self.element} spectra")
        return self.predict_descriptors(w.from_environments(
            [structure_environment(structure, absorbing_index, w.r_cut)]))[0]

    def to_spectrum(self, mu: np.ndarray, material_id: str | None = None, absorbing_index: int | None = None,
                    source: str | None = None):
        """Wrap a predicted ``mu`` (n_points,) as a :class:`xasml.spectrum.Spectrum` on the model grid;
        ``metadata`` records the model's broadening and ``"predicted": True``."""
        from xasml.spectrum import Spectrum

        return Spectrum(energy=self.energy, mu=mu, absorbing_element=self.element, edge=self.edge,
                        material_id=material_id, absorbing_index=absorbing_index, source=source,
                        metadata={"predicted": True, "broadening": self.broadening.to_dict()})

    def predict_file(self, path: str | Path, absorbing_index: int | None = None) -> dict:
        """Predict from a structure file: ``.xyz`` (absorber first unless ``absorbing_index``) or
        any crystal file pymatgen reads (``absorbing_index`` required unless all sites of the
        model's element are symmetry-equivalent, in which case the first is used).

        Returns
        -------
        dict
            ``file``, ``element``, ``edge``, ``absorbing_index``, ``energy`` (eV), ``mu``,
            ``broadening`` (what the training targets had).

        Raises
        ------
        DataError
            Naming the file: unreadable or invalid structure, absorbing index negative or out of
            range, absorber not the model's element (for ``.xyz``: the absorber must come first).
        """
        from xasml.io.structures import is_xyz, read_structure, read_xyz

        path = Path(path)
        if is_xyz(path):
            mol = read_xyz(path)
            idx = _check_index(path, 0 if absorbing_index is None else absorbing_index, len(mol), "atoms")
            z = int(mol.numbers[idx])
            if z != atomic_number(self.element):
                raise DataError(_wrong_absorber_message(path, mol.numbers, idx, absorbing_index is None,
                                                        f"this model predicts {self.element} spectra",
                                                        {self.element}))
            try:
                mu = self.predict_molecule(mol.numbers, mol.positions, idx)
            except DataError as exc:
                raise DataError(f"{path}: {exc}") from None
        else:
            s = read_structure(path, ordered=True)
            if absorbing_index is None:
                absorbing_index = _single_inequivalent_site(s, self.element, path)
            idx = _check_index(path, absorbing_index, len(s), "sites")
            try:
                mu = self.predict_structure(s, idx)
            except DataError as exc:
                raise DataError(f"{path}: {exc}") from None
        if not np.isfinite(mu).all():
            raise DataError(f"{path}: the model gave non-finite values; its weights or this structure are "
                            "invalid (check the model folder and the coordinates)")
        return {"file": str(path), "element": self.element, "edge": self.edge, "absorbing_index": idx,
                "energy": [round(float(e), 4) for e in self.energy], "mu": [float(f"{m:.6g}") for m in mu],
                "broadening": self.broadening.to_dict()}


def _single_inequivalent_site(structure, element: str, path) -> int:
    """Index of the absorbing site when all ``element`` sites are symmetry-equivalent (pymatgen
    ``SpacegroupAnalyzer``); otherwise a :class:`DataError` listing one index per inequivalent site."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sites = [i for i, site in enumerate(structure) if site.specie.symbol == element]
    if not sites:
        raise DataError(f"{path}: no {element} site in the structure")
    if len(sites) == 1:
        return sites[0]
    try:
        eq = SpacegroupAnalyzer(structure).get_symmetrized_structure().equivalent_indices
    except Exception:  # symmetry search failed: ask the user
        eq = [[i] for i in sites]
    classes = [sorted(c) for c in eq if c and c[0] in sites]
    if len(classes) == 1:
        return classes[0][0]
    raise DataError(f"{path}: {len(classes)} inequivalent {element} sites; pass --absorbing-index "
                    f"(one of {[c[0] for c in classes][:20]})")


def _check_index(path: Path, index, n: int, what: str) -> int:
    """``index`` as an int in ``0 <= index < n``, else a :class:`DataError` naming ``path``."""
    try:
        idx = int(index)
    except (TypeError, ValueError):
        raise DataError(f"{path}: absorbing index {index!r} is not an integer") from None
    if idx < 0:
        raise DataError(f"{path}: absorbing index {idx} is negative; expected a 0-based index 0-{n - 1} "
                        f"({n} {what})")
    if idx >= n:
        raise DataError(f"{path}: absorbing index {idx} out of range; the file has {n} {what}, expected "
                        f"0-{n - 1}")
    return idx


def _wrong_absorber_message(path: Path, numbers, idx: int, defaulted: bool, why: str,
                            wanted: set[str] | None = None) -> str:
    """Message for an ``.xyz`` whose absorber (atom ``idx``) has no model: the cause first.

    ``wanted``: elements that do have a model (default: the shipped ones); an atom of one of them
    elsewhere in the file means the absorber was not put first.
    """
    from pymatgen.core.periodic_table import Element

    sym = Element.from_Z(int(numbers[idx])).symbol
    if not defaulted:
        return f"{path}: atom {idx} (--absorbing-index) is {sym}; {why}"
    if wanted is None:
        wanted = {p.name for p in SHIPPED.iterdir()} if SHIPPED.exists() else set()
    for i, z in enumerate(numbers):
        el = Element.from_Z(int(z)).symbol
        if i != idx and el in wanted:
            return (f"{path}: the first atom is {sym}, but the absorber must be the first atom of an .xyz file "
                    f"(atom {i} is {el}: move it to the first line, or pass --absorbing-index {i}); {why}")
    return f"{path}: the first atom (the absorber: it must come first in an .xyz file) is {sym}; {why}"


def _guess_element(path: Path, absorbing_index: int | None) -> str:
    from pymatgen.core.periodic_table import Element

    from xasml.io.structures import is_xyz, read_structure, read_xyz

    shipped = {p.name for p in SHIPPED.iterdir() if (p / "forward.json").exists()} if SHIPPED.exists() else set()
    if is_xyz(path):
        mol = read_xyz(path)
        idx = _check_index(path, 0 if absorbing_index is None else absorbing_index, len(mol), "atoms")
        el = Element.from_Z(int(mol.numbers[idx])).symbol
        if el not in shipped:
            raise DataError(_wrong_absorber_message(
                path, mol.numbers, idx, absorbing_index is None,
                f"no shipped forward model for {el} (shipped: {', '.join(sorted(shipped)) or 'none'}; "
                "or pass --model DIR)"))
        return el
    s = read_structure(path, ordered=True)
    if absorbing_index is not None:
        return s[_check_index(path, absorbing_index, len(s), "sites")].specie.symbol
    els = [e.symbol for e in s.composition.elements if e.symbol in shipped]
    if len(els) != 1:
        raise DataError(f"{path}: cannot tell which shipped model to use (elements with a model: {els}); "
                        "pass --model or --absorbing-index")
    return els[0]


def predict_files(paths, model_dir: str | Path | None = None, absorbing_index: int | None = None) -> list[dict]:
    """Predict spectra for structure files.

    Parameters
    ----------
    paths : iterable of str or Path
        ``.xyz`` molecules (absorber first) or crystal files.
    model_dir : str or Path, optional
        Model folder; default: the shipped model of each structure's absorbing element.
    absorbing_index : int, optional
        Absorbing site (0-based); required for crystals with several sites of the element.

    Returns
    -------
    list of dict
        One :meth:`ForwardModel.predict_file` result per path.

    Raises
    ------
    DataError
        Naming the file, for the first file that cannot be predicted (see
        :meth:`ForwardModel.predict_file`), or when ``absorbing_index`` is negative.
    """
    out = []
    for _, res in iter_predictions(paths, model_dir, absorbing_index):
        if isinstance(res, Exception):
            raise res
        out.append(res)
    return out


def iter_predictions(paths, model_dir: str | Path | None = None, absorbing_index: int | None = None):
    """Predict file by file, yielding ``(path, result)`` where ``result`` is the
    :meth:`ForwardModel.predict_file` dict or the :class:`~xasml.errors.XasmlError` of that file.

    Parameters
    ----------
    paths, model_dir, absorbing_index
        As for :func:`predict_files`.

    Yields
    ------
    (Path, dict or XasmlError)
        The dict is :meth:`ForwardModel.predict_file`'s, plus ``model`` (the model folder used).

    Raises
    ------
    DataError
        At once when ``absorbing_index`` is negative, or the model folder ``model_dir`` is invalid.
    """
    from xasml.errors import XasmlError

    paths = [Path(p) for p in paths]
    if absorbing_index is not None and int(absorbing_index) < 0:
        first = paths[0] if paths else "--absorbing-index"
        raise DataError(f"{first}: absorbing index {int(absorbing_index)} is negative; expected a 0-based "
                        "index (0 = first atom/site); negative indices are not counted from the end")
    cache: dict[str, ForwardModel] = {}
    if model_dir:
        cache[str(model_dir)] = ForwardModel.load(model_dir)
    for p in paths:
        try:
            key = str(model_dir) if model_dir else shipped_model_dir(_guess_element(p, absorbing_index)).as_posix()
            if key not in cache:
                cache[key] = ForwardModel.load(key)
            res = cache[key].predict_file(p, absorbing_index)
            res["model"] = key
            yield p, res
        except XasmlError as exc:
            yield p, exc


def write_prediction_xdi(result: dict, out_dir: str | Path) -> Path:
    """Write one prediction (a :func:`iter_predictions` result) as an XDI file in ``out_dir``.

    The file is ``<name>_<El>_<absorbing index:03d>.xdi`` (``<name>``: the file's stem, or its
    folder's name for ``POSCAR``/``CONTCAR``/``structure.cif``); its header records the element
    and edge, the structure file, the model folder and the broadening of the training targets,
    so the spectrum can be compared with measurements or loaded by any XDI reader.

    Parameters
    ----------
    result : dict
        ``file``, ``element``, ``edge``, ``absorbing_index``, ``energy`` (eV), ``mu``,
        ``broadening``, ``model``.
    out_dir : str or Path
        Folder (created if needed).

    Returns
    -------
    Path
        The file written (atomically).
    """
    from xasml.io.xdi import write_xdi
    from xasml.spectrum import Spectrum

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(result["file"])
    stem = src.parent.name if src.name in ("POSCAR", "CONTCAR", "structure.cif") else src.stem
    spec = Spectrum(energy=np.asarray(result["energy"], float), mu=np.asarray(result["mu"], float),
                    absorbing_element=result["element"], edge=result["edge"], material_id=stem,
                    absorbing_index=int(result["absorbing_index"]), source=str(src),
                    metadata={"predicted": True, "model": result.get("model"), "broadening": result["broadening"]})
    comments = [f"xasml forward prediction for {src} (absorbing site {result['absorbing_index']})",
                f"model: {result.get('model')}",
                f"broadening of the training targets: {json.dumps(result['broadening'])}"]
    return write_xdi(out_dir / f"{stem}_{result['element']}_{int(result['absorbing_index']):03d}.xdi", spec,
                     comments=comments)
