"""``xasml local predict``: coordination environment, coordination number and oxidation state of
spectrum files with the local-structure model bundles (:mod:`xasml.models.bundle`, which holds the
bundle format and how spectra are prepared for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from xasml.errors import DataError, SpectrumError
from xasml.models.bundle import ModelBundle, find_bundle


def predict_files(files: Sequence[str | Path], task: str, model: str | Path | None = None,
                  element: str | None = None, edge: str | None = None, energy_col: str | None = None,
                  mu: str | None = None, calibrate: str = "auto", reference: str | Path | None = None) -> list[dict]:
    """Predict ``task`` for spectrum files (FEFF ``xmu.dat``, XDI, Athena, column files).

    The model is ``model``, or the one shipped for the spectrum's absorbing element (``element``
    when the file does not say; :func:`find_bundle`).

    Parameters
    ----------
    files : sequence of path
        Spectrum files, or folders (every FEFF ``xmu.dat`` and XDI file in them, see
        :func:`expand_inputs`). An Athena project gives one result per group.
    task : {"coordination", "cn", "oxidation"}
    model : path, optional
        See :func:`find_bundle`.
    element, edge : str, optional
        Absorbing element and edge for files that do not state them (and to check those that do).
    energy_col, mu : str, optional
        Column files: energy column and μ (name, 1-based index or expression, e.g. ``ln(i0/it)``).
    calibrate, reference :
        Energy calibration of measured spectra (:func:`xasml.preprocess.calibrate.calibrate`).

    Returns
    -------
    list of dict
        One per spectrum: ``file``, ``absorbing_element``, ``prediction``, and
        ``probabilities`` (class -> probability) and ``environment_name`` (ChemEnv's name of the
        predicted symbol) for classification, or ``std`` for regression: the standard
        deviation of the ensemble members times the factor calibrated on validation data so that
        ±2σ covers 95 % of validation sites; for measured spectra the ``calibration`` record and
        ``warnings``; ``error`` instead when the file could not be used.
    """
    from xasml.io.reader import read_spectra

    bundles: dict[str, ModelBundle] = {}

    def bundle_for(el: str) -> ModelBundle:
        key = el if model is None else "given"
        if key not in bundles:
            bundles[key] = ModelBundle.load(find_bundle(task, model, el))
        return bundles[key]

    out = []
    for f in expand_inputs(files):
        try:  # an Athena project's reference ('Ref') groups calibrate its samples; they are not answered
            spectra = read_spectra(f, element, edge, energy_col, mu, include_references=False)
        except (SpectrumError, DataError, OSError, ValueError) as exc:
            out.append({"file": str(f), "error": str(exc)})
            continue
        for s in spectra:
            name = str(f) if len(spectra) == 1 else f"{f}:{s.metadata.get('label') or s.material_id}"
            try:
                b = bundle_for(s.absorbing_element)
                res = b.predict([s], calibrate=calibrate, reference=reference)[0]
                out.append({"file": name, "absorbing_element": s.absorbing_element, **res})
            except (SpectrumError, DataError, OSError, ValueError) as exc:
                out.append({"file": name, "error": str(exc)})
    return out


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files to predict: each file as given; for a folder, every ``xmu.dat`` (FEFF) and ``*.xdi``
    file below it, sorted.

    Raises
    ------
    DataError
        If a folder holds no such file.
    """
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and (q.name == "xmu.dat" or q.suffix.lower() == ".xdi"))
            if not found:
                raise DataError(f"{p}: folder holds no FEFF xmu.dat or .xdi file")
            out += found
        else:
            out.append(p)
    return out
