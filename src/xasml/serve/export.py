"""Downloads of the beamline page: results as CSV/JSON, normalised data as XDI or an Athena project."""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Iterable

__all__ = ["RESULT_COLUMNS", "athena_project_text", "result_rows", "results_csv"]

#: columns of the results table (one row per spectrum); energies in eV; ``oxidation_state`` ±
#: ``oxidation_state_std``: the model's answer and calibrated std; ``combined_oxidation_state`` ±
#: ``combined_sigma``: the model and the measured standards combined (calibrated σ); ``flagged``:
#: the evidence doubts the answer
RESULT_COLUMNS = ("entry", "name", "label", "origin", "status", "absorbing_element", "edge", "e0", "edge_step",
                  "oxidation_state", "oxidation_state_std", "combined_oxidation_state", "combined_sigma", "flagged",
                  "cn", "cn_std", "environment", "out_of_domain", "n_warnings", "error")


def result_rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per spectrum of each store entry (one row for a file that could not be read).

    Parameters
    ----------
    entries : iterable of dict
        :meth:`xasml.serve.store.ResultStore.entries`.

    Returns
    -------
    list of dict
        Keys :data:`RESULT_COLUMNS`, plus ``spectrum`` (index in the file), ``header``
        (numeric header fields) and ``warnings``.
    """
    rows = []
    for e in entries:
        res = e["result"]
        base = {"entry": e["id"], "name": e["name"], "origin": e["origin"]}
        spectra = res.get("spectra") or []
        if res.get("status") == "error" and not any("error" not in s for s in spectra):
            rows.append({**base, "spectrum": 0, "label": e["name"], "status": "error", "error": res.get("error"),
                         "header": {}, "warnings": []})
            continue
        for i, s in enumerate(spectra):
            a = s.get("answers", {})
            ox, cn, env = a.get("oxidation", {}), a.get("cn", {}), a.get("coordination", {})
            comb = ox.get("combined") or {}
            rows.append({
                **base, "spectrum": i, "label": s.get("label"), "status": "error" if "error" in s else "ok",
                "absorbing_element": s.get("absorbing_element"), "edge": s.get("edge"), "e0": s.get("e0"),
                "edge_step": s.get("edge_step"), "oxidation_state": ox.get("prediction"),
                "oxidation_state_std": ox.get("std"), "combined_oxidation_state": comb.get("oxidation_state"),
                "combined_sigma": comb.get("sigma"), "flagged": ox.get("flagged"),
                "cn": cn.get("prediction"), "cn_std": cn.get("std"),
                "environment": env.get("prediction"), "out_of_domain": ox.get("out_of_domain"),
                "n_warnings": len(s.get("warnings", [])), "error": s.get("error"),
                "header": s.get("header", {}), "warnings": s.get("warnings", []),
            })
    return rows


def results_csv(rows: list[dict[str, Any]]) -> str:
    """The results table as CSV text.

    Parameters
    ----------
    rows : list of dict
        One per spectrum (:func:`result_rows`).

    Returns
    -------
    str
        A header line of :data:`RESULT_COLUMNS` then the rows' ``header`` fields (sorted), one line
        per row; missing values are empty.
    """
    extra = sorted({k for r in rows for k in r.get("header", {})})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(RESULT_COLUMNS) + extra)
    for r in rows:
        w.writerow([("" if r.get(k) is None else r.get(k)) for k in RESULT_COLUMNS]
                   + [r.get("header", {}).get(k, "") for k in extra])
    return buf.getvalue()


def _perl_str(v: Any) -> str:
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def athena_project_text(groups: list[dict[str, Any]]) -> str:
    """An Athena project (the Perl-data text that Athena/Demeter and xraylarch read) of μ(E) groups.

    Each group is written as Athena stores one (Ravel & Newville, J. Synchrotron Rad. 12, 537
    (2005); the ``# Athena project file`` layout): ``$old_group``, ``@args`` (label,
    ``bkg_e0``, ``bkg_pre1``, ``bkg_pre2``, ``bkg_nor1``, ``bkg_nor2``, ``bkg_nnorm``,
    ``bkg_z``, ``fft_edge``, ``is_xmu``), ``@x`` (energy, eV) and ``@y`` (μ), then
    ``[record]``; so Athena opens it with the normalisation chosen on the page. Athena counts
    the post-edge polynomial's terms (``bkg_nnorm`` = larch's degree ``nnorm`` + 1).

    Parameters
    ----------
    groups : list of dict
        ``label``, ``energy`` (eV), ``mu``, ``e0`` (eV), ``pre1``, ``pre2``, ``norm1``,
        ``norm2`` (eV relative to e0), ``nnorm``, ``absorbing_element``, ``edge``.

    Returns
    -------
    str
        The project text (Athena also reads it uncompressed).
    """
    from xasml import __version__

    lines = ["# Athena project file -- Demeter version 0.9.26",
             f"# This file created at {time.strftime('%H:%M:%S on %d %B, %Y')}",
             f"# using xasml {__version__} (xasml serve)", "#------------------------", ""]
    for i, g in enumerate(groups, start=1):
        name = f"xasml{i:04d}"
        args = {"label": g["label"], "group": name, "datatype": "xmu", "is_xmu": 1, "is_chi": 0,
                "bkg_e0": g["e0"], "bkg_pre1": g["pre1"], "bkg_pre2": g["pre2"], "bkg_nor1": g["norm1"],
                "bkg_nor2": g["norm2"], "bkg_nnorm": int(g["nnorm"]) + 1, "bkg_z": g["absorbing_element"],
                "fft_edge": g["edge"], "bkg_eshift": 0, "bkg_flatten": 1}
        lines.append(f"$old_group = {_perl_str(name)};")
        lines.append("@args = (" + ",".join(f"{_perl_str(k)},{_perl_str(v)}" for k, v in args.items()) + ");")
        lines.append("@x = (" + ",".join(_perl_str(f"{x:.6f}") for x in g["energy"]) + ");")
        lines.append("@y = (" + ",".join(_perl_str(f"{y:.10g}") for y in g["mu"]) + ");")
        lines.append("[record] # ")
        lines.append("")
    lines += ["", "1;", ""]
    return "\n".join(lines)
