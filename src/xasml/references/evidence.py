"""Evidence from measured standards: nearest standards, linear-combination fits, edge-position valence.

All three compare a measured spectrum's flattened μ(E) (larch ``flat``, on the calibrated energy
scale) with the standards of the same element and edge in a reference library
(:mod:`xasml.references.library`):

* :func:`nearest_standards`: Pearson correlation of ``flat`` over the XANES window, maximised over a
  small common energy shift (reported);
* :func:`linear_combination_fit`: every combination of 1–3 standards with non-negative weights
  summing to one and one common energy shift, ranked by reduced χ², with the R-factor — the
  linear-combination fitting of Athena/larch (``lincombo_fitall``; Ravel & Newville, J. Synchrotron
  Rad. 12, 537 (2005); Ressler et al., Environ. Sci. Technol. 34, 950 (2000)) — and the valence
  the weights imply (Σ wᵢ·valenceᵢ);
* :func:`edge_position_valence`: the edge energy (larch e0 or the half-height energy) against
  valence, a straight line fitted over the element's standards (one point per compound), with
  its residual σ (the classic edge-shift calibration, e.g. Wilke et al., Am. Mineral. 86, 714
  (2001); Kunzl's law).

A measured spectrum enters as an :class:`Unknown` (:func:`unknown_from_spectrum` measures it
the way the library's standards were measured; :func:`unknown_from_row` takes a library entry,
for leave-one-compound-out benchmarks).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from xasml.references.library import entry_flat, half_height_energy

__all__ = ["Unknown", "unknown_from_spectrum", "unknown_from_curves", "unknown_from_row", "standards_for",
           "nearest_standards", "linear_combination_fit", "edge_position_valence", "evidence_curves", "foil_weight",
           "FOIL_WEIGHT", "WINDOW", "MAX_SHIFT", "SHIFT_STEP", "STEP"]

#: XANES window of the comparisons, eV relative to the unknown's e0
WINDOW = (-20.0, 60.0)
#: grid step of the comparisons, eV
STEP = 0.25
#: largest energy shift of a standard searched by :func:`nearest_standards` (eV), and the step of every shift search
MAX_SHIFT = 1.0
SHIFT_STEP = 0.1
#: largest common energy shift of a linear-combination fit (eV): calibration error only, since a
#: larger shift would stand in for the valence the fit is to measure
LCF_MAX_SHIFT = 1.0
#: prior residual σ (valence units) of an edge-position line and its weight in degrees of freedom
EDGE_PRIOR_SIGMA = 0.5
EDGE_PRIOR_DOF = 2


#: a best linear-combination fit with at least this weight of the element's metal-foil standards is
#: "mostly foil": a metal (with a metal's edge shape, :func:`xasml.local.metal.metal_from_standards`)
#: or, without that shape, a compound the library holds nothing like (:mod:`xasml.references.combine`)
FOIL_WEIGHT = 0.8


def foil_weight(components: Sequence[Mapping[str, Any]], element: str) -> float:
    """Summed weight of the element's metal-foil standards in a linear-combination fit.

    Parameters
    ----------
    components : sequence of mapping
        The fit's components (``weight``, ``formula`` and/or ``compound``).
    element : str
        The absorbing element: only standards whose formula is this element alone (or, without a
        formula, named "<El> metal") count; carbides, nitrides and other valence-0 standards do not.

    Returns
    -------
    float
        Between 0 and 1.
    """
    def is_foil(c: Mapping[str, Any]) -> bool:
        formula = str(c.get("formula") or "").strip()
        name = str(c.get("compound") or "")
        return formula == element or (not formula and name.split()[:2] == [element, "metal"])

    return float(sum(float(c.get("weight", 0.0)) for c in components if is_foil(c)))


@dataclass
class Unknown:
    """A measured spectrum ready for comparison with standards.

    Attributes
    ----------
    element, edge : str
        Absorbing element and edge.
    energy : ndarray, shape (n,)
        Calibrated energies, eV.
    flat : ndarray, shape (n,)
        Flattened μ (larch ``flat``).
    e0 : float
        Edge energy (larch), eV.
    e_half : float
        Half-height energy (flat = 0.5), eV.
    name : str
        File or entry name.
    record : dict
        The measurement record (:func:`xasml.measure.core.measure_spectrum`), when measured here.
    """

    element: str
    edge: str
    energy: np.ndarray
    flat: np.ndarray
    e0: float
    e_half: float
    name: str = ""
    record: dict[str, Any] = field(default_factory=dict)

    def on_window(self) -> tuple[np.ndarray, np.ndarray]:
        """The spectrum on the uniform comparison grid.

        Returns
        -------
        energy : ndarray, shape (m,)
            ``e0 + WINDOW[0] … e0 + WINDOW[1]`` in :data:`STEP` (eV) steps.
        flat : ndarray, shape (m,)
            ``flat`` interpolated there over its finite points (held at its end values beyond them).
        """
        e = self.e0 + np.arange(WINDOW[0], WINDOW[1] + STEP / 2, STEP)
        ok = np.isfinite(self.flat)
        return e, np.interp(e, self.energy[ok], self.flat[ok])


def unknown_from_spectrum(spectrum, calibrate: str = "auto", reference=None) -> Unknown:
    """Measure a spectrum (checks, calibration, larch ``pre_edge``) as the library's standards were.

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (absolute eV) with its element and edge.
    calibrate, reference :
        Energy calibration (:func:`xasml.preprocess.calibrate.calibrate`).

    Returns
    -------
    Unknown

    Raises
    ------
    SpectrumError
        From the checks, calibration or normalisation (file named).
    """
    from xasml.measure.core import normalized_measured

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat_spec, rec = normalized_measured(spectrum, calibrate=calibrate, reference=reference)
    e0 = float(rec["e0"])
    return Unknown(spectrum.absorbing_element, spectrum.edge, np.asarray(flat_spec.energy, float),
                   np.asarray(flat_spec.mu, float), e0, half_height_energy(flat_spec.energy, flat_spec.mu, e0),
                   str(spectrum.source or rec.get("label") or ""), rec)


def unknown_from_curves(element: str, edge: str, energy, flat, e0: float, name: str = "",
                        record: dict[str, Any] | None = None) -> Unknown:
    """An :class:`Unknown` from a spectrum already normalised elsewhere (e.g. with a user's own e0
    and ranges on the beamline page), its half-height energy computed here.

    Parameters
    ----------
    element, edge : str
        Absorbing element and edge.
    energy : array_like, shape (n,)
        Calibrated energies, eV, increasing.
    flat : array_like, shape (n,)
        Flattened μ (larch ``flat``) on ``energy``.
    e0 : float
        Edge energy, eV. It places the comparison window (:data:`WINDOW`) and is the ``e0`` measure
        of :func:`edge_position_valence`, whose line is of the standards' larch ``e0`` (maximum of
        the derivative): an e0 chosen by another rule biases that measure.
    name : str
        File or entry name.
    record : dict, optional
        The measurement record.

    Returns
    -------
    Unknown
    """
    e, f = np.asarray(energy, float), np.asarray(flat, float)
    return Unknown(element, edge, e, f, float(e0), half_height_energy(e, f, float(e0)), str(name), dict(record or {}))


def unknown_from_row(row) -> Unknown:
    """A library entry as an :class:`Unknown` (to score a standard as if it were measured).

    Parameters
    ----------
    row : mapping or pandas.Series
        A library row (:mod:`xasml.references.library`: ``element``, ``edge``, ``e0``, ``e_half``,
        ``id``, and ``flat`` on its grid).

    Returns
    -------
    Unknown
        Its stored ``flat`` on its absolute energies (eV), named by the row's ``id``.
    """
    from xasml.references.library import entry_energy

    return Unknown(row["element"], row["edge"], entry_energy(row), np.asarray(row["flat"], float),
                   float(row["e0"]), float(row["e_half"]), str(row["id"]))


def standards_for(library, element: str, edge: str, exclude_compounds: Iterable[str] = (),
                  known_valence: bool = False):
    """The library rows of one element and edge, without the excluded compounds.

    Parameters
    ----------
    library : pandas.DataFrame
        A reference library (:func:`xasml.references.library.load_library`).
    element, edge : str
    exclude_compounds : iterable of str
        Compounds to leave out (leave-one-compound-out).
    known_valence : bool
        Keep only standards with a known valence.

    Returns
    -------
    pandas.DataFrame
        The matching rows (a view of ``library``; empty when none).
    """
    df = library[(library["element"] == element) & (library["edge"] == edge)]
    ex = set(exclude_compounds)
    if ex:
        df = df[~df["compound"].isin(ex)]
    if known_valence:
        df = df[df["valence"].notna()]
    return df


def _representatives(df):
    """One entry per compound: the first calibrated one (library order), else the first."""
    rows = []
    for _, g in df.groupby("compound", sort=True):
        cal = g[g["calibration"] != "none"]
        rows.append((cal if len(cal) else g).iloc[0])
    return rows


def _shifted_matrix(rows, energy: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(n_shift, n_energy, n_rows): each row's flat at energy − shift."""
    out = np.empty((len(shifts), len(energy), len(rows)))
    pts = (energy[None, :] - shifts[:, None]).ravel()
    for j, r in enumerate(rows):
        out[:, :, j] = entry_flat(r, pts).reshape(len(shifts), len(energy))
    return out


def _shifts(max_shift: float | None = None) -> np.ndarray:
    n = int(round((MAX_SHIFT if max_shift is None else max_shift) / SHIFT_STEP))
    return SHIFT_STEP * np.arange(-n, n + 1)


def nearest_standards(unknown: Unknown, library, k: int = 5, exclude_compounds: Iterable[str] = ()) -> list[dict]:
    """The standards of the unknown's element and edge that look most like it.

    The standards are ranked by the R-factor Σ(y − f)²/Σy² of ``flat`` over :data:`WINDOW` (eV
    around the unknown's e0, 0.25 eV grid), minimised over an energy shift of the standard within
    ±:data:`MAX_SHIFT` eV (a calibration error, not a valence change); the similarity reported is the
    Pearson correlation r at that shift. The best entry of each compound is kept.

    Parameters
    ----------
    unknown : Unknown
    library : pandas.DataFrame
    k : int
        Number of compounds to return.
    exclude_compounds : iterable of str
        Compounds to leave out.

    Returns
    -------
    list of dict
        Best (smallest R-factor) first: ``id``, ``compound``, ``formula``, ``valence``,
        ``environment`` and ``cn`` (of the standard's structure, or None),
        ``similarity`` (r), ``shift`` (eV added to the standard's energies to match),
        ``r_factor`` (Σ(y−f)²/Σy² at that shift), ``e0`` (eV).
    """
    df = standards_for(library, unknown.element, unknown.edge, exclude_compounds)
    if df.empty:
        return []
    rows = [r for _, r in df.iterrows()]
    e, y = unknown.on_window()
    shifts = _shifts()
    S = _shifted_matrix(rows, e, shifts)  # (ns, n, N)
    yc = y - y.mean()
    Sc = S - S.mean(axis=1, keepdims=True)
    r = np.einsum("n,snj->sj", yc, Sc) / (np.linalg.norm(yc) * np.linalg.norm(Sc, axis=1) + 1e-12)
    rf = np.sum((y[None, :, None] - S) ** 2, axis=1) / np.sum(y ** 2)  # (ns, N)
    best_s = np.argmin(rf, axis=0)
    best_r = r[best_s, np.arange(len(rows))]
    order = np.argsort(rf[best_s, np.arange(len(rows))])
    out, seen = [], set()
    for j in order:
        row = rows[j]
        if row["compound"] in seen:
            continue
        seen.add(row["compound"])
        f = S[best_s[j], :, j]
        out.append({"id": row["id"], "compound": row["compound"], "formula": row["formula"],
                    "valence": None if not np.isfinite(row["valence"]) else float(row["valence"]),
                    "environment": row.get("environment") or None,
                    "cn": None if row.get("cn") is None or not np.isfinite(row["cn"]) else float(row["cn"]),
                    "similarity": round(float(best_r[j]), 4), "shift": round(float(shifts[best_s[j]]), 2),
                    "r_factor": round(float(np.sum((y - f) ** 2) / np.sum(y ** 2)), 5), "e0": float(row["e0"])})
        if len(out) >= k:
            break
    return out


def _combo_fits(G: np.ndarray, c: np.ndarray, yy: float, max_components: int):
    """Exact non-negative, sum-to-one least squares for every 1–3 combination, at one shift.

    Parameters: the Gram matrix ``G`` (N, N) of the standards, ``c`` = Sᵀy (N,), ``yy`` = yᵀy.
    A combination whose unconstrained optimum (on the sum-to-one plane) has a weight ≤ 0 is
    dropped: its constrained optimum lies on a face, i.e. is a smaller combination, fitted too.
    Returns (combos list of index tuples, weights (M, 3), χ² (M,)).
    """
    N = len(c)
    combos, W, chi = [], [], []
    d = np.diag(G)
    for i in range(N):
        combos.append((i,))
        W.append((1.0, 0.0, 0.0))
        chi.append(yy - 2 * c[i] + d[i])
    if max_components >= 2 and N >= 2:
        I, J = np.triu_indices(N, 1)
        dd = d[I] - 2 * G[I, J] + d[J]
        num = c[I] - c[J] - G[I, J] + d[J]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = num / dd
        ok = (dd > 1e-12) & (w > 0) & (w < 1)
        base = yy - 2 * c[J] + d[J]
        ch = base - num ** 2 / np.where(dd > 1e-12, dd, 1.0)
        for a, b, ww, x in zip(I[ok], J[ok], w[ok], ch[ok]):
            combos.append((int(a), int(b)))
            W.append((float(ww), 1 - float(ww), 0.0))
            chi.append(float(x))
    if max_components >= 3 and N >= 3:
        T = np.array(list(itertools.combinations(range(N), 3)))
        I, J, K = T[:, 0], T[:, 1], T[:, 2]
        a11 = d[I] - 2 * G[I, K] + d[K]
        a22 = d[J] - 2 * G[J, K] + d[K]
        a12 = G[I, J] - G[I, K] - G[J, K] + d[K]
        r1 = c[I] - c[K] - G[I, K] + d[K]
        r2 = c[J] - c[K] - G[J, K] + d[K]
        det = a11 * a22 - a12 ** 2
        safe = np.where(np.abs(det) > 1e-12, det, 1.0)
        w1 = (r1 * a22 - r2 * a12) / safe
        w2 = (r2 * a11 - r1 * a12) / safe
        w3 = 1 - w1 - w2
        ok = (np.abs(det) > 1e-12 * np.maximum(a11 * a22, 1e-30)) & (w1 > 0) & (w2 > 0) & (w3 > 0)
        ch = yy - 2 * c[K] + d[K] - (w1 * r1 + w2 * r2)
        for t, x1, x2, x3, x in zip(T[ok], w1[ok], w2[ok], w3[ok], ch[ok]):
            combos.append(tuple(int(v) for v in t))
            W.append((float(x1), float(x2), float(x3)))
            chi.append(float(x))
    return combos, np.asarray(W, float), np.asarray(chi, float)


def linear_combination_fit(unknown: Unknown, library, max_components: int = 3, exclude_compounds: Iterable[str] = (),
                           top: int = 10, known_valence: bool = True,
                           max_shift: float | None = None) -> dict[str, Any] | None:
    """Linear-combination fit of the unknown's ``flat`` with the library's standards.

    Every combination of 1 to ``max_components`` standards (one entry per compound) of the same
    element and edge is fitted on :data:`WINDOW` (eV around the unknown's e0, 0.25 eV grid) with
    non-negative weights summing to one (exact: the equality-constrained least-squares optimum,
    kept only when every weight is positive) and one common energy shift of the standards
    (1-D search within ±:data:`MAX_SHIFT` eV, step :data:`SHIFT_STEP`); fits are ranked by
    reduced χ² = Σ(y − Σwᵢfᵢ)² / (n − n_varys), n_varys = components − 1 + 1 (shift).
    The R-factor is Σ(y − fit)² / Σy² (Athena's). As larch's ``lincombo_fitall``.

    Parameters
    ----------
    unknown : Unknown
    library : pandas.DataFrame
    max_components : int
        1 to 3.
    exclude_compounds : iterable of str
        Compounds to leave out (leave-one-compound-out).
    top : int
        Number of fits returned.
    known_valence : bool
        Use only standards with a known valence (so that every fit implies a valence).

    Returns
    -------
    dict or None
        None when the library has no standard of the element and edge. Otherwise ``fits``
        (best first: ``components`` — list of {``id``, ``compound``, ``valence``, ``weight``} —,
        ``shift`` eV, ``chi2``, ``reduced_chi2``, ``r_factor``, ``valence``), ``best`` (= fits[0]),
        ``valence`` (the best fit's Σ wᵢ·valenceᵢ), ``valence_spread`` (weighted spread of the
        valences of the fits within 1.5× the best R-factor), ``n_points``, ``n_standards``,
        ``n_combinations``.
    """
    df = standards_for(library, unknown.element, unknown.edge, exclude_compounds, known_valence)
    rows = _representatives(df) if not df.empty else []
    if not rows:
        return None
    e, y = unknown.on_window()
    shifts = _shifts(LCF_MAX_SHIFT if max_shift is None else max_shift)
    S = _shifted_matrix(rows, e, shifts)
    yy = float(y @ y)
    best: dict[tuple, tuple[float, np.ndarray, float]] = {}
    for si, s in enumerate(shifts):
        G = S[si].T @ S[si]
        cvec = S[si].T @ y
        combos, W, chi = _combo_fits(G, cvec, yy, max_components)
        for cb, w, x in zip(combos, W, chi):
            if cb not in best or x < best[cb][0]:
                best[cb] = (float(x), w, float(s))
    n = len(y)
    vals = np.array([r["valence"] for r in rows], float)
    fits = []
    for cb, (x, w, s) in best.items():
        nvar = len(cb)  # (len-1) weights + 1 shift
        comps = [{"id": rows[i]["id"], "compound": rows[i]["compound"], "formula": rows[i].get("formula"),
                  "valence": None if not np.isfinite(vals[i]) else float(vals[i]), "weight": round(float(w[k]), 4)}
                 for k, i in enumerate(cb)]
        v = float(sum(w[k] * vals[i] for k, i in enumerate(cb)))
        fits.append({"components": comps, "shift": round(s, 2), "chi2": max(x, 0.0),
                     "reduced_chi2": max(x, 0.0) / (n - nvar), "r_factor": max(x, 0.0) / yy,
                     "valence": v if np.isfinite(v) else None})
    fits.sort(key=lambda f: f["reduced_chi2"])
    r0 = fits[0]["r_factor"]
    close = [f for f in fits if f["r_factor"] <= 1.5 * r0 + 1e-6 and f["valence"] is not None][:20]
    if close:
        wts = np.array([(r0 + 1e-9) / (f["r_factor"] + 1e-9) for f in close])
        vv = np.array([f["valence"] for f in close])
        mean = float(np.sum(wts * vv) / wts.sum())
        spread = float(np.sqrt(np.sum(wts * (vv - mean) ** 2) / wts.sum()))
    else:
        spread = None
    for f in fits[:top]:
        for k in ("chi2", "reduced_chi2", "r_factor"):
            f[k] = float(f"{f[k]:.4g}")
        if f["valence"] is not None:
            f["valence"] = round(f["valence"], 3)
    return {"fits": fits[:top], "best": fits[0], "valence": fits[0]["valence"], "valence_spread": spread,
            "n_points": n, "n_standards": len(rows), "n_combinations": len(fits),
            "window": [unknown.e0 + WINDOW[0], unknown.e0 + WINDOW[1]]}


def _compound_points(df, column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(energy, valence, compound) per compound with known valence: median of its calibrated entries (else all)."""
    xs, vs, names = [], [], []
    for comp, g in df[df["valence"].notna()].groupby("compound", sort=True):
        cal = g[g["calibration"] != "none"]
        use = cal if len(cal) else g
        xs.append(float(np.median(use[column])))
        vs.append(float(g["valence"].iloc[0]))
        names.append(comp)
    return np.asarray(xs), np.asarray(vs), names


def edge_position_valence(unknown: Unknown, library, exclude_compounds: Iterable[str] = (),
                          measures: Sequence[str] = ("e_half", "e0")) -> dict[str, Any] | None:
    """Valence from the edge position, by a straight line over the element's standards.

    For each edge measure (``e_half``: where ``flat`` reaches 0.5; ``e0``: larch's edge
    energy), valence = a + b·E is fitted by least squares over the standards of the unknown's
    element and edge with known valence (one point per compound: the median of its calibrated
    entries). The measure with the smaller residual σ is used (valence units; the n − 2 degrees
    of freedom of the residuals pooled with a prior σ of :data:`EDGE_PRIOR_SIGMA` on
    :data:`EDGE_PRIOR_DOF` degrees of freedom, so that 3–4 compounds do not claim a tiny σ); the
    prediction σ is the residual σ times √(1 + 1/n + (E − Ē)²/Sₓₓ).

    Parameters
    ----------
    unknown : Unknown
    library : pandas.DataFrame
    exclude_compounds : iterable of str
        Compounds to leave out (leave-one-compound-out).
    measures : sequence of {"e_half", "e0"}
        Edge measures tried.

    Returns
    -------
    dict or None
        None (abstain) with fewer than 3 compounds of known valence, fewer than 2 distinct
        valences, or no rising line. Otherwise ``valence``, ``sigma`` (the fit's prediction σ),
        ``measure``, ``energy`` (the unknown's, eV), ``slope`` (valence per eV), ``intercept``,
        ``residual_sigma``, ``n_standards``, and ``fits`` (each measure's slope and residual σ).
    """
    df = standards_for(library, unknown.element, unknown.edge, exclude_compounds, known_valence=True)
    if df.empty:
        return None
    fits = {}
    for m in measures:
        x, v, names = _compound_points(df, m)
        if len(x) < 3 or len(set(v)) < 2 or np.ptp(x) <= 0:
            continue
        b, a = np.polyfit(x, v, 1)
        if not b > 0:
            continue
        res = v - (a + b * x)
        dof = len(x) - 2
        # residual variance shrunk towards a prior (EDGE_PRIOR_SIGMA on EDGE_PRIOR_DOF degrees of
        # freedom): a line through 3-4 compounds says little about its own scatter
        s = float(np.sqrt((np.sum(res ** 2) + EDGE_PRIOR_DOF * EDGE_PRIOR_SIGMA ** 2) / (dof + EDGE_PRIOR_DOF)))
        fits[m] = {"slope": float(b), "intercept": float(a), "residual_sigma": s, "n_standards": len(x),
                   "mean": float(np.mean(x)), "sxx": float(np.sum((x - np.mean(x)) ** 2))}
    if not fits:
        return None
    m = min(fits, key=lambda k: fits[k]["residual_sigma"])
    f = fits[m]
    E = float(getattr(unknown, m))
    v = f["intercept"] + f["slope"] * E
    sig = f["residual_sigma"] * np.sqrt(1 + 1 / f["n_standards"] + (E - f["mean"]) ** 2 / f["sxx"])
    return {"valence": round(float(v), 3), "sigma": round(float(max(sig, 1e-3)), 3), "measure": m,
            "energy": round(E, 2), "slope": round(f["slope"], 4), "intercept": round(f["intercept"], 3),
            "residual_sigma": round(f["residual_sigma"], 3), "n_standards": f["n_standards"],
            "fits": {k: {"slope": round(x["slope"], 4), "residual_sigma": round(x["residual_sigma"], 3)}
                     for k, x in fits.items()}}


def evidence_curves(evidence: dict[str, Any], library, n_nearest: int = 3) -> dict[str, Any]:
    """The spectra behind the evidence of one measured spectrum, to draw over its ``flat``.

    Parameters
    ----------
    evidence : dict
        The ``evidence`` of :func:`xasml.references.combine.collect_evidence` (``lcf`` with its
        ``best`` fit and ``window``, ``nearest``).
    library : pandas.DataFrame
        The library the evidence came from (the rows are found by ``id``).
    n_nearest : int
        How many of the nearest standards.

    Returns
    -------
    dict
        ``lcf``: the best linear combination Σ wᵢ·flatᵢ(E − shift) on the fit's window
        (``energy`` eV, ``flat``, ``label``: weights and compounds), or None; ``nearest``: per
        standard ``id``, ``compound``, ``valence``, ``similarity``, ``shift`` and its stored
        ``flat`` on ``energy`` (eV, the standard's energies plus the shift that matched best).
        Standards missing from ``library`` are left out.
    """
    from xasml.references.library import entry_energy

    lcf = (evidence or {}).get("lcf")
    ids = {c["id"] for c in ((lcf or {}).get("best") or {}).get("components", [])}
    ids |= {n["id"] for n in ((evidence or {}).get("nearest") or [])[:n_nearest]}
    rows = {r["id"]: r for _, r in library[library["id"].isin(ids)].iterrows()} if len(library) else {}
    out: dict[str, Any] = {"lcf": None, "nearest": []}
    if lcf and lcf.get("best") and lcf.get("window"):
        best = lcf["best"]
        comps = [(c, rows.get(c["id"])) for c in best["components"]]
        if comps and all(r is not None for _, r in comps):
            e = np.arange(lcf["window"][0], lcf["window"][1] + STEP / 2, STEP)
            fit = sum(c["weight"] * entry_flat(r, e - best["shift"]) for c, r in comps)
            out["lcf"] = {"energy": e, "flat": np.asarray(fit, float), "shift": best["shift"],
                          "r_factor": best["r_factor"],
                          "label": " + ".join(f"{c['weight']:.2f} {c['compound']}" for c, _ in comps)}
    for n in ((evidence or {}).get("nearest") or [])[:n_nearest]:
        r = rows.get(n["id"])
        if r is None:
            continue
        f = np.asarray(r["flat"], float)
        ok = np.isfinite(f)
        out["nearest"].append({"id": n["id"], "compound": n["compound"], "valence": n.get("valence"),
                               "similarity": n.get("similarity"), "shift": n.get("shift"),
                               "energy": entry_energy(r)[ok] + float(n.get("shift") or 0.0), "flat": f[ok]})
    return out
