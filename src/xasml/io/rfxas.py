"""Reader for the measured-spectrum table of the random-forest XAS study (``experiment.csv``).

Zheng, Chen, Ong et al., "Random forest models for accurate identification of coordination
environments from X-ray absorption near-edge structure", Patterns 1, 100013 (2020)
(maml-apps-rfxas, BSD). The file has one row per measured spectrum and 264 columns. What the
columns hold (found by inspecting the file):

* ``xas_id`` (``<mp-id>-<El>``), ``absorbing_species``, ``formula``, ``mp_id`` (Materials
  Project id, or ``mvc-...``), ``source_note`` (``http://cars.uchicago.edu/xaslib/`` for the XAS
  Data Library, ``eels`` for electron energy-loss K edges of light elements, ``Louis`` for a
  further set of XAS), ``Spectral_entry_link``.
* ``x_axis_energy``: a Python tuple of 200 **absolute energies in eV**, evenly spaced; each row
  has its own grid (spacing 0.19–0.46 eV, width 38–92 eV). 25 of the 30 rows start 5.0 eV
  (±0.4) below the tabulated K edge (xraydb) and span about 59 eV (V 5460.0–5519.0 eV,
  Cu 8973.6–9032.9 eV); Sr starts 35 eV and Cd 19 eV below the edge, and the EELS rows
  (B, Na, Al, Si) start between 5 eV below and 3 eV above it.
* ``interp_spectrum``: the 200 intensities on that grid as a tuple; ``y1`` … ``y200`` repeat
  them as columns. Each spectrum is min-max scaled (minimum 0, maximum 1), not edge-step
  normalised.
* Labels: ``top_1_coord_num`` (``CN_6``, the label the paper classifies), ``coord_num_weight``
  (dict ``wt CN_n`` → fraction of absorbing sites), ``coord_env_weight`` (dict environment →
  weight), ``ex_CN_1`` … ``ex_CN_12`` (0/1: CN present), ``<environment> CN_n_ex`` (0/1:
  ChemEnv environment present), ``CN_n env_label``, ``gs_cnum_cenv_top1`` /
  ``gs_cnum_cenv_ranklist``, and element descriptors ``Z_number``, ``ele_group_label``,
  ``ele_block_label``, ``ele_tm_alka_metalloid``.

All spectra are K edges.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.spectrum import Spectrum

__all__ = ["read_rfxas_csv"]

_REQUIRED = ("xas_id", "absorbing_species", "formula", "mp_id", "x_axis_energy", "interp_spectrum",
             "top_1_coord_num")


def _tuple(value: Any, src: str, line: int, column: str) -> np.ndarray:
    try:
        arr = np.asarray(ast.literal_eval(str(value)), dtype=float)
    except (ValueError, SyntaxError, TypeError):
        raise SpectrumError(f"column {column!r} is not a tuple of numbers", source=src, line=line,
                            field=column) from None
    if arr.ndim != 1:
        raise SpectrumError(f"column {column!r} must be a flat tuple of numbers", source=src, line=line,
                            field=column)
    return arr


def _dict(value: Any, src: str, line: int, column: str) -> dict:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    try:
        d = ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        raise SpectrumError(f"column {column!r} is not a dict literal", source=src, line=line, field=column) from None
    if not isinstance(d, dict):
        raise SpectrumError(f"column {column!r} is not a dict literal", source=src, line=line, field=column)
    return d


def _cn(label: str) -> int | None:
    m = re.fullmatch(r"CN_(\d+)", str(label).strip())
    return int(m.group(1)) if m else None


def read_rfxas_csv(path: str | Path) -> list[tuple[Spectrum, dict[str, Any]]]:
    """Read the measured spectra and their coordination labels from ``experiment.csv``.

    Parameters
    ----------
    path : str or Path
        The CSV file (``experimental/rfxas/experiment.csv`` in the shared data).

    Returns
    -------
    list of (Spectrum, dict)
        One entry per row. The spectrum: absolute ``energy`` (eV) from ``x_axis_energy``,
        ``mu`` from ``interp_spectrum`` (min-max scaled), ``edge="K"``, ``material_id`` = the
        mp-id, ``kind="mu"``, ``metadata`` with ``technique`` (``"EELS"`` for rows whose
        ``source_note`` is ``eels``, else ``"XAS"``), ``source_note``, ``link``, ``xas_id``.
        The labels dict: ``xas_id``, ``formula``, ``mp_id``, ``cn_label`` (``"CN_6"``),
        ``coordination_number`` (6), ``cn_weights`` ({CN: fraction}), ``cn_present`` (sorted
        CNs flagged by ``ex_CN_n``), ``environment_weights`` ({ChemEnv name: weight}),
        ``environments`` (names flagged present), ``top_environment``
        (``gs_cnum_cenv_top1``), ``Z``, ``group``, ``block``, ``element_class``.

    Raises
    ------
    SpectrumError
        If the file is missing or not CSV, a required column is absent (named), or a row's
        energy or spectrum is malformed (file line named).
    """
    import pandas as pd

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise SpectrumError("file not found", source=src)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SpectrumError(f"not a readable CSV file: {exc}", source=src) from None
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise SpectrumError(f"missing column(s) {', '.join(missing)}: expected the rfxas experiment.csv layout",
                            source=src, field=missing[0])
    env_cols = [c for c in df.columns if c.endswith("_ex") and " CN_" in c]
    out = []
    for i, row in df.iterrows():
        line = int(i) + 2  # header is line 1
        energy = _tuple(row["x_axis_energy"], src, line, "x_axis_energy")
        mu = _tuple(row["interp_spectrum"], src, line, "interp_spectrum")
        if energy.size != mu.size:
            raise SpectrumError(f"x_axis_energy has {energy.size} values but interp_spectrum has {mu.size}",
                                source=src, line=line, field="interp_spectrum")
        note = str(row.get("source_note", ""))
        meta = {"format": "rfxas", "xas_id": row["xas_id"], "technique": "EELS" if note.strip().lower() == "eels" else "XAS",
                "source_note": note, "link": row.get("Spectral_entry_link"), "scaling": "min-max (0..1)"}
        try:
            spectrum = Spectrum(energy=energy, mu=mu, absorbing_element=row["absorbing_species"], edge="K",
                                material_id=str(row["mp_id"]), source=f"{src}:{line}", kind="mu", metadata=meta)
        except SpectrumError as exc:
            raise SpectrumError(exc.message, source=src, line=line, field=exc.field) from None
        cn_w = {}
        for k, v in _dict(row.get("coord_num_weight"), src, line, "coord_num_weight").items():
            n = _cn(str(k).replace("wt ", ""))
            if n is not None:
                cn_w[n] = float(v)
        labels = {
            "xas_id": row["xas_id"],
            "formula": row["formula"],
            "mp_id": str(row["mp_id"]),
            "cn_label": str(row["top_1_coord_num"]),
            "coordination_number": _cn(row["top_1_coord_num"]),
            "cn_weights": cn_w,
            "cn_present": sorted(n for n in range(1, 13) if int(row.get(f"ex_CN_{n}", 0) or 0) == 1),
            "environment_weights": {str(k): float(v) for k, v in
                                    _dict(row.get("coord_env_weight"), src, line, "coord_env_weight").items()},
            "environments": sorted(c[: -len("_ex")] for c in env_cols if int(row[c] or 0) == 1),
            "top_environment": row.get("gs_cnum_cenv_top1"),
            "Z": int(row["Z_number"]) if "Z_number" in row else None,
            "group": int(row["ele_group_label"]) if "ele_group_label" in row else None,
            "block": row.get("ele_block_label"),
            "element_class": row.get("ele_tm_alka_metalloid"),
        }
        out.append((spectrum, labels))
    return out
