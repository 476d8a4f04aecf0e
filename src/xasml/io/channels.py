"""What the channels of a column file are, and which expression of them is μ(E).

The XAS channel vocabulary (the names beamlines, larch and Athena use) gives each column a
role: ``i0`` (incident intensity: ``i0``, ``io``, ``mon``, ``prekb_i0``), ``it`` (transmitted:
``it``, ``i1``, ``itrans``), ``iref`` (after the reference foil: ``iref``, ``ir``, ``i2``),
``if`` (fluorescence: ``if``, ``iff``, ``fluor``, ``lytle``, ``pips``, ``tfy``), element
fluorescence windows (``mn_ka_mca1``, ``xmap4_aska_sum``, ``alka_sum_cps``), detector-element
arrays (``sca1_1``..., ``fla01``...), ``ey`` (electron yield: ``tey``), stored ``mu`` (``mu``,
``xmu``, ``mutrans``, ``mufluor``, ``mu01``), ``mu_ref`` (``mu_ref``, ``mu12``), normalised
``norm`` (``norm``, ``flat``), derivatives (``dmude``) and χ(k) (``k``, ``chi``). Names are
matched whole, or as ``_``-separated words (``i0_keithley1_c4`` is an ``i0``); a trailing
``_cN`` column suffix is ignored.

:func:`choose_mu` tries, in order, a stored μ, transmission ``ln(i0/it)``, fluorescence
``if/i0`` (the absorber's fluorescence window when the channels are per element), electron
yield ``ey/i0``, a normalised column, and last the reference channel (``mu_ref`` or
``ln(it/iref)``), and takes the first whose values are finite and show an absorption edge
(:func:`edge_strength`): a flat channel is never taken when another has an edge. A transmission
edge is set aside for a fluorescence channel whose edge is over :data:`DOMINANCE` times clearer (a
dilute sample measured in fluorescence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["channel_role", "edge_strength", "choose_mu", "fluorescence_element", "MuChoice", "EDGE_STRENGTH_MIN",
           "ROLES"]

#: the roles a channel can have
ROLES = ("energy", "i0", "it", "iref", "if", "ey", "mu", "mu_ref", "norm", "deriv", "k", "chi", "time")
#: below this :func:`edge_strength` a channel is called flat (no absorption edge)
EDGE_STRENGTH_MIN = 20.0

_WHOLE = {
    "i0": {"i0", "io", "i_0", "izero", "mon", "monitor", "ion0", "ic0", "i0ch", "imon"},
    "it": {"it", "i1", "itrans", "i_t", "itr", "trans", "transmission", "ic1_t"},
    "iref": {"iref", "ir", "i2", "irefer", "i_ref", "iref1", "ref_i"},
    "if": {"if", "iff", "ifl", "ifluor", "ifluo", "fluor", "fluo", "fl", "fluorescence", "lytle", "pips", "tfy",
           "pfy", "fy", "flatot", "fltot", "fluo_tot", "if_sum", "sum_if"},
    "ey": {"tey", "ey", "pey", "drain", "drain_current", "eyield"},
    "mu": {"mu", "xmu", "mutrans", "mu_trans", "mut", "mufluor", "mu_fluor", "muf", "mu_t", "mu_f", "absorption",
           "mu01", "xanes", "mu_sample", "musample"},
    "mu_ref": {"mu_ref", "muref", "murefer", "mu_refer", "mu_reference", "mref", "mu12", "mu_std", "mustd"},
    "norm": {"norm", "nor", "normtrans", "normfluor", "norm_trans", "norm_fluor", "flat", "flattened", "normalized",
             "normalised", "mu_norm"},
    "deriv": {"dmude", "dmu", "dmu_de", "deriv", "derivative", "dnorm", "dnormde", "d_mu", "dxmu", "dmude_norm"},
    "k": {"k"},
    "chi": {"chi", "chik", "chi_k", "kchi", "k2chi", "k3chi", "chi_k2", "chi_k3"},
    "time": {"time", "sec", "seconds", "tscaler", "count_time", "htime", "real_time_clock", "scaler_preset_time"},
}
_WORD = {"i0": {"i0", "io"}, "it": {"it", "i1", "itrans"}, "iref": {"iref", "ir", "i2", "irefer"},
         "if": {"if", "iff", "ifluor", "fluor", "fluo", "lytle", "pips", "tfy", "pfy"}, "ey": {"tey", "pey"}}
_LINE = r"(?:ka1?|ka2|kb1?|k|la1?|lb1?|l|ma)"
_ARRAY = re.compile(r"^(?:sca\d*_\d+|fla\d+|mca\d+|det\d+|xmap_roi\d+|roi\d+|ch\d+_roi\d*|ifl\d+|if\d+|fluo\d+)$")
_SYMBOLS = None


def _symbols() -> dict[str, str]:
    global _SYMBOLS
    if _SYMBOLS is None:
        from xasml.edges import _SYMBOLS as syms

        _SYMBOLS = {s.lower(): s for s in syms}
    return _SYMBOLS


def _words(name: str) -> list[str]:
    words = [w for w in name.lower().split("_") if w]
    if len(words) > 1 and re.fullmatch(r"c\d+", words[-1]):
        words = words[:-1]  # SLS-style column-number suffix
    return words


def fluorescence_element(name: str) -> str | None:
    """The element of a fluorescence-window channel.

    Parameters
    ----------
    name : str
        Normalised channel name (``mn_ka_mca1``, ``xmap4_aska_sum``, ``d1_alka_corr_c13``).

    Returns
    -------
    str or None
        The element symbol (``"Mn"``, ``"As"``, ``"Al"``), or None when the name names no
        element's emission line (Kα, Kβ, Lα, Lβ, Mα).
    """
    words = _words(name)
    syms = _symbols()
    for i, w in enumerate(words):
        m = re.fullmatch(rf"([a-z]{{1,2}}){_LINE}", w)
        if m and m.group(1) in syms:
            return syms[m.group(1)]
        if w in syms and i + 1 < len(words) and re.fullmatch(_LINE, words[i + 1]):
            return syms[w]
    return None


def channel_role(name: str) -> str | None:
    """The role of a channel from its (normalised) name; None when the vocabulary has no word for it.

    Parameters
    ----------
    name : str
        Lower-case channel name as :func:`xasml.io.headers.larch_name` gives it.

    Returns
    -------
    str or None
        One of :data:`ROLES`, ``"if:<El>"`` for an element's fluorescence window, ``"if:array"``
        for one element of a multi-element detector (``sca1_3``), ``"ion:<n>"`` for a numbered
        ion chamber (``ion1``, ``ic2``) whose place in the beam the name does not say.
    """
    n = name.lower()
    for role, names in _WHOLE.items():
        if n in names:
            return role
    base = "_".join(_words(n))
    for role, names in _WHOLE.items():
        if base in names:
            return role
    if re.fullmatch(r"(?:energy|e|en|ene|energy_ev|mono_energy|energy_readback|omega)", base) or "energy" in base:
        return "energy"
    el = fluorescence_element(n)
    if el:
        return f"if:{el}"
    if _ARRAY.match(n):
        return "if:array"
    m = re.fullmatch(r"(?:ion|ic|ionch|ionchamber|detector)_?(\d)", base)
    if m:
        return f"ion:{m.group(1)}"
    words = _words(n)
    for role in ("i0", "it", "iref", "if", "ey"):
        if any(w in _WORD[role] for w in words):
            return role
    return None


def edge_strength(energy: np.ndarray, mu: np.ndarray) -> tuple[float, float]:
    """How clearly a curve shows an absorption edge, and where.

    The curve is interpolated on a uniform 0.5 eV grid, smoothed over 3 eV (boxcar), and its
    steepest rise is compared with the typical slope: ``(max(d) - median(d)) / (1.4826 MAD(d))``
    of the derivative ``d``. An edge gives tens to thousands; a flat or noise-only channel (an
    empty sample position, a detector that saw nothing) gives a few.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Energies, eV (any order).
    mu : ndarray, shape (n,)
        The curve.

    Returns
    -------
    (float, float)
        The strength (0 for constant or non-finite curves) and the energy (eV) of the steepest rise.
    """
    e = np.asarray(energy, dtype=float)
    m = np.asarray(mu, dtype=float)
    ok = np.isfinite(e) & np.isfinite(m)
    e, m = e[ok], m[ok]
    if e.size < 10 or not np.ptp(m) > 0 or not np.ptp(e) > 0:
        return 0.0, float("nan")
    vals, counts = np.unique(m, return_counts=True)
    if counts.max() > 0.5 * m.size:
        return 0.0, float("nan")  # mostly one value: an empty or saturated channel
    order = np.argsort(e, kind="stable")
    e, m = e[order], m[order]
    keep = np.concatenate(([True], np.diff(e) > 0))
    e, m = e[keep], m[keep]
    step = max(0.5, float(np.ptp(e)) / 20000.0)
    grid = np.arange(e[0], e[-1], step)
    if grid.size < 20:
        return 0.0, float("nan")
    g = np.interp(grid, e, m)
    w = max(3, int(round(3.0 / step)))
    sm = np.convolve(g, np.ones(w) / w, mode="valid")
    d = np.diff(sm)
    if d.size < 10:
        return 0.0, float("nan")
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826
    peak = int(np.argmax(d))
    rise = float(d[peak] - med)
    scale = mad if mad > 0 else (float(np.mean(np.abs(d - med))) or 0.0)
    if not scale > 0:
        return (0.0 if not rise > 0 else 1e6), float(grid[peak + w // 2])
    return rise / scale, float(grid[peak + w // 2])


@dataclass
class MuChoice:
    """The μ a column file gives, and why.

    Attributes
    ----------
    expression : str
        Column name or expression of the channels (``ln(i0/it)``, ``if/i0``).
    mode : str
        ``"stored"``, ``"transmission"``, ``"fluorescence"``, ``"electron-yield"``,
        ``"normalized"``, ``"reference"`` or ``"option"``.
    reason : str
        One sentence: which names decided it, and what was passed over (flat or not finite).
    reference : str or None
        The reference-channel expression (``mu_ref``, ``ln(it/iref)``) when one has an edge.
    strength : float
        :func:`edge_strength` of the chosen μ.
    """

    expression: str
    mode: str
    reason: str
    reference: str | None = None
    strength: float = float("nan")


def _ordered(roles: dict[str, str], role: str) -> list[str]:
    return [c for c, r in roles.items() if r == role]


def _candidates(columns: list[str], roles: dict[str, str], element: str | None,
               energy_range: tuple[float, float] | None) -> tuple[list[tuple[str, str, str]], list[str], str]:
    """μ candidates ``(expression, mode, why)`` in order of preference, the reference-channel
    expressions, and a note on how i0/it/iref were assigned."""
    roles = {c: r for c, r in roles.items() if r}
    note = ""
    ions = sorted((int(r.split(":")[1]), c) for c, r in roles.items() if r.startswith("ion:"))
    missing = [r for r in ("i0", "it", "iref") if not _ordered(roles, r)]
    if ions and len(missing) < 3 or len(ions) >= 2:
        # numbered ion chambers (ion1, ion2; detector1..) fill the roles no name gives, in beam order
        pairs = list(zip([c for _, c in ions], missing))
        for c, role in pairs:
            roles[c] = role
        if pairs:
            note = (" (numbered chambers taken in beam order: "
                    + ", ".join(f"{c} as {r}" for c, r in pairs) + ")")
    i0 = (_ordered(roles, "i0") or [None])[0]
    it = (_ordered(roles, "it") or [None])[0]
    iref = (_ordered(roles, "iref") or [None])[0]
    out: list[tuple[str, str, str]] = []
    for c in _ordered(roles, "mu"):
        out.append((c, "stored", f"column {c!r} is a stored mu"))
    if i0 and it:
        out.append((f"ln({i0}/{it})", "transmission", f"{i0!r} is i0 and {it!r} the transmitted intensity{note}"))
    if i0:
        groups: dict[str, list[str]] = {}
        for c, r in roles.items():
            if r.startswith("if:") and r != "if:array":
                groups.setdefault(r[3:], []).append(c)
        els = list(groups)
        if element is not None:
            els = [el for el in els if el == element] + [el for el in els if el != element]
        elif energy_range is not None:
            els = sorted(els, key=lambda el: 0 if _edge_in_range(el, energy_range) else 1)
        for el in els:
            chans = groups[el]
            total = [c for c in chans if {"sum", "tot", "total"} & set(_words(c))]
            num = total[0] if total else (chans[0] if len(chans) == 1 else "(" + "+".join(chans) + ")")
            out.append((f"{num}/{i0}", "fluorescence", f"{', '.join(total[:1] or chans)} "
                        f"{'is' if len(total[:1] or chans) == 1 else 'are'} the {el} fluorescence window"
                        f"{'' if len(total[:1] or chans) == 1 else 's'} and {i0!r} is i0"))
        for c in _ordered(roles, "if"):
            out.append((f"{c}/{i0}", "fluorescence", f"{c!r} is a fluorescence channel and {i0!r} is i0"))
        arr = _ordered(roles, "if:array")
        if arr:
            num = arr[0] if len(arr) == 1 else "(" + "+".join(arr) + ")"
            out.append((f"{num}/{i0}", "fluorescence", f"{len(arr)} fluorescence detector channel(s) "
                        f"({arr[0]}{'...' + arr[-1] if len(arr) > 1 else ''}) summed over {i0!r} (i0)"))
        for c in _ordered(roles, "ey"):
            out.append((f"{c}/{i0}", "electron-yield", f"{c!r} is an electron-yield channel and {i0!r} is i0"))
    for c in _ordered(roles, "norm"):
        out.append((c, "normalized", f"column {c!r} is a normalised spectrum"))
    refs: list[str] = []
    for c in _ordered(roles, "mu_ref"):
        refs.append(c)
    if it and iref:
        refs.append(f"ln({it}/{iref})")
    for r in refs:
        out.append((r, "reference", f"{r} is the reference channel"))
    return out, refs, note


def _edge_in_range(el: str, rng: tuple[float, float]) -> bool:
    from xasml.edges import edge_energy, has_edge

    return any(rng[0] < edge_energy(el, k) < rng[1] for k in ("K", "L3") if has_edge(el, k))


#: a fluorescence channel whose edge strength is this many times the transmission's is taken instead
DOMINANCE = 5.0


def _clearly_better_fluorescence(cands, data, energy, source, strength: float):
    from xasml.io.columns import evaluate_expression

    for expr, mode, why in cands:
        if mode != "fluorescence":
            continue
        with np.errstate(all="ignore"):
            v = evaluate_expression(expr, data, source)
        if not np.all(np.isfinite(v)):
            continue
        s = edge_strength(energy, v)[0]
        if s >= EDGE_STRENGTH_MIN and s > DOMINANCE * strength:
            return expr, mode, why, s
    return None


def choose_mu(columns: list[str], data: dict[str, np.ndarray], energy: np.ndarray, roles: dict[str, str],
              element: str | None = None, source: str | None = None) -> MuChoice | None:
    """The μ of a column file when the user does not say: the first candidate (see the module
    docstring) that is finite and shows an edge.

    Parameters
    ----------
    columns : list of str
        Channel names, file order.
    data : dict of str to ndarray, shape (n,)
        The channels.
    energy : ndarray, shape (n,)
        Energies, eV (for :func:`edge_strength`).
    roles : dict of str to str
        Role of each channel (:func:`channel_role`, plus what the header states).
    element : str, optional
        The absorber, when known: its fluorescence window is preferred.
    source : str, optional
        File name for error messages.

    Returns
    -------
    MuChoice or None
        None when the vocabulary names no μ at all (the caller asks the user).

    Raises
    ------
    SpectrumError
        When candidates exist but none is finite with an edge (the message lists each and why).
    """
    from xasml.errors import SpectrumError
    from xasml.io.columns import evaluate_expression

    rng = (float(np.nanmin(energy)), float(np.nanmax(energy))) if energy.size else None
    cands, refs, _ = _candidates(columns, roles, element, rng)
    if not cands:
        return None
    passed: list[str] = []
    flat_stored: list[tuple[float, str, str, str]] = []
    ref_ok = None
    for r in refs:
        with np.errstate(all="ignore"):
            v = evaluate_expression(r, data, source)
        if np.all(np.isfinite(v)) and edge_strength(energy, v)[0] >= EDGE_STRENGTH_MIN:
            ref_ok = r
            break
    for expr, mode, why in cands:
        with np.errstate(all="ignore"):
            v = evaluate_expression(expr, data, source)
        bad = int((~np.isfinite(v)).sum())
        if bad:
            passed.append(f"{expr} is not finite at {bad} point(s)")
            continue
        s, where = edge_strength(energy, v)
        if s < EDGE_STRENGTH_MIN:
            passed.append(f"{expr} is flat (edge strength {s:.1f} < {EDGE_STRENGTH_MIN:g})")
            if mode in ("stored", "normalized"):
                flat_stored.append((s, expr, mode, why))
            continue
        if mode == "transmission":
            # a dilute sample measured in fluorescence shows a weak edge in transmission too: the
            # fluorescence is taken when its edge is far clearer (DOMINANCE times the strength)
            better = _clearly_better_fluorescence(cands, data, energy, source, s)
            if better is not None:
                f_expr, f_mode, f_why, f_s = better
                reason = (f"{f_why}; its edge (strength {f_s:.0f}) is over {DOMINANCE:g}x clearer than the "
                          f"transmission {expr}'s ({s:.0f})" + (f"; passed over: {'; '.join(passed)}" if passed else ""))
                return MuChoice(expression=f_expr, mode=f_mode, reason=reason, reference=ref_ok, strength=f_s)
        reason = why + (f"; passed over: {'; '.join(passed)}" if passed else "")
        return MuChoice(expression=expr, mode=mode, reason=reason, reference=ref_ok if mode != "reference" else expr,
                        strength=s)
    if flat_stored:  # a stored spectrum (a computed or smooth one) is what the file offers: taken, with a doubt
        s, expr, mode, why = max(flat_stored)
        return MuChoice(expression=expr, mode=mode, reason=f"{why}; no channel shows a sharp edge (edge strength "
                        f"{s:.1f}): taken as the file's stored spectrum", reference=ref_ok, strength=s)
    if passed and "not finite" in passed[0] and all("not finite" in p for p in passed):
        expr, mode, why = cands[0]  # the caller reports where it is not finite
        return MuChoice(expression=expr, mode=mode, reason=why, reference=ref_ok, strength=0.0)
    shown = [p if len(p) <= 100 else p[:97] + "..." for p in passed[:6]]
    raise SpectrumError("no channel shows an absorption edge: " + "; ".join(shown) + "; give --mu (a column or an "
                        "expression such as ln(i0/it))", source=source, field="mu")
