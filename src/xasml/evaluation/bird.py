"""The "XANES bird": a UMAP of the K-edge site spectra of many elements (Lu-group perspective, §III.C).

The perspective (paper 002, Fig. 7) curates the Materials Project FEFF K-edge database (per-element
grids, normalised spectra only, Z < 52 without noble gases, duplicates and 3σ outliers removed:
:func:`xasml.curate.curate` with the ``paper`` preset), embeds the spectra with UMAP
(n_neighbors 94, min_dist 0.1, random_state 1579) and colours the map by the section of the
periodic table the absorber belongs to and by the absorber's bond-valence oxidation state.
Each spectrum is on its own element's grid (200 points over 35 eV from the element's lowest
energy), so UMAP sees line shapes, and elements separate by shape, not by edge energy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: sections of the periodic table used to colour the map (paper 002, Fig. 7a)
ELEMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "alkali metals": ("Li", "Na", "K", "Rb", "Cs"),
    "alkaline-earth metals": ("Be", "Mg", "Ca", "Sr", "Ba"),
    "3d transition metals": ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"),
    "4d transition metals": ("Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd"),
    "5d and f-block metals": ("La", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg"),
    "p-block metals": ("Al", "Ga", "In", "Sn", "Tl", "Pb", "Bi"),
    "metalloids": ("B", "Si", "Ge", "As", "Sb", "Te"),
    "nonmetals": ("H", "C", "N", "O", "P", "S", "Se"),
    "halogens": ("F", "Cl", "Br", "I"),
}

#: UMAP parameters of the perspective's Figure 7
PAPER_UMAP = {"n_neighbors": 94, "min_dist": 0.1, "seed": 1579}


def element_group(symbol: str) -> str:
    """The periodic-table section of an element (``"other"`` when none of :data:`ELEMENT_GROUPS`)."""
    for name, members in ELEMENT_GROUPS.items():
        if symbol in members:
            return name
    return "other"


def oxidation_label(value) -> str:
    """A colour label of a bond-valence oxidation state: ``"+2"``, ``"-2"``, ``"0"``, or ``"None"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "None"
    try:
        v = int(value)
    except (TypeError, ValueError):
        return "None"
    return f"{v:+d}" if v else "0"


def xanes_bird(X: np.ndarray, elements: Sequence[str], oxidation_states: Sequence | None = None,
               n_neighbors: int = PAPER_UMAP["n_neighbors"], min_dist: float = PAPER_UMAP["min_dist"],
               seed: int = PAPER_UMAP["seed"], max_spectra: int | None = None) -> dict:
    """UMAP embedding of site spectra with the colour labels of the XANES bird.

    Parameters
    ----------
    X : ndarray, shape (n_spectra, n_points)
        Curated spectra, each on its element's grid (``xasml curate`` output ``mu``).
    elements : sequence of str, length n_spectra
        Absorbing element of each row.
    oxidation_states : sequence, optional
        Bond-valence oxidation state of each absorber (None / NaN when unknown).
    n_neighbors, min_dist, seed : UMAP parameters (default: the paper's).
    max_spectra : int, optional
        Embed a random subset of this size (the paper down-sampled to 25 %); seeded.

    Returns
    -------
    dict
        ``embedding`` (n, 2), ``rows`` (indices into ``X`` embedded), ``group`` and
        ``oxidation`` colour labels, and ``params``.

    Raises
    ------
    MissingExtraError
        If umap-learn is not installed (extra ``umap``).
    """
    from xasml.evaluation.exploration import umap_embed

    X = np.asarray(X, dtype=float)
    rows = np.arange(len(X))
    if max_spectra is not None and len(X) > max_spectra:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), size=max_spectra, replace=False))
    Z = umap_embed(X[rows], n_neighbors=n_neighbors, min_dist=min_dist, seed=seed)
    els = [elements[i] for i in rows]
    ox = [oxidation_label(oxidation_states[i]) for i in rows] if oxidation_states is not None else ["None"] * len(rows)
    return {"embedding": Z, "rows": rows, "group": [element_group(e) for e in els], "oxidation": ox,
            "params": {"n_neighbors": n_neighbors, "min_dist": min_dist, "seed": seed, "n_spectra": int(len(rows)),
                       "n_points": int(X.shape[1])}}
