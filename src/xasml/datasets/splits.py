"""Train / validation / test splits balanced per absorbing element and per class.

Andrejevic et al. (Adv. Mater. 34, 2204113 (2022), §2 and Figure S1c) split 70/15/15 so that
every absorbing element, and the fractions of trivial, TI and semimetal compounds that
contain it, are represented alike in the three sets. Their public code assigns compounds
element by element, rarest element first, stratified by class. This module does the same
with a quota rule: for each element (rarest first) and each stratum (subclass) of the
compounds containing it, the not-yet-assigned compounds are dealt, in a seeded random
order, to the split whose share of that stratum is furthest below its target. Compounds
already placed by a rarer element count towards the targets, so the quotas of common
elements absorb the imbalance left by rare ones. Every compound ends in exactly one split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from xasml.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


def balanced_split(elements: Sequence[Sequence[str]], strata: Sequence[Hashable],
                   fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0,
                   fixed: dict[int, str] | None = None) -> dict[str, list[int]]:
    """Split compounds 70/15/15, balanced per element and stratum.

    Parameters
    ----------
    elements : sequence of sequence of str, length n_compounds
        Elements of each compound.
    strata : sequence, length n_compounds
        Stratum of each compound (e.g. subclass trivial / TI / TCI / SM).
    fractions : (float, float, float)
        Target fractions of train, val and test; must sum to 1.
    seed : int
        Seed of the random order; the split is a deterministic function of the inputs and seed.
    fixed : dict[int, str], optional
        Compounds whose split is imposed (index -> split name); they count towards quotas.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}``, sorted compound indices.

    Raises
    ------
    DataError
        If lengths differ or the fractions are invalid.
    """
    n = len(elements)
    if len(strata) != n:
        raise DataError(f"balanced_split: {n} compounds but {len(strata)} strata")
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise DataError(f"balanced_split: fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    assigned: dict[int, int] = {i: SPLIT_NAMES.index(s) for i, s in (fixed or {}).items()}
    by_el: dict[str, list[int]] = {}
    for i, els in enumerate(elements):
        for el in set(els):
            by_el.setdefault(el, []).append(i)
    # rarest element first; ties broken by a seeded shuffle so that no alphabetical bias remains
    names = sorted(by_el)
    tiebreak = dict(zip(names, rng.permutation(len(names))))
    order = sorted(names, key=lambda e: (len(by_el[e]), tiebreak[e]))

    def deal(members: list[int]) -> None:
        for stratum in sorted({strata[i] for i in members}, key=str):
            group = [i for i in members if strata[i] == stratum]
            counts = np.zeros(3)
            for i in group:
                if i in assigned:
                    counts[assigned[i]] += 1
            todo = [i for i in group if i not in assigned]
            rng.shuffle(todo)
            for i in todo:
                placed = counts.sum()
                # deficit of each split after placing this compound
                deficit = f * (placed + 1) - counts
                # the largest deficit wins; ties (e.g. val vs test) go to the split furthest
                # below its overall target, then at random
                best = np.flatnonzero(deficit >= deficit.max() - 1e-9)
                if len(best) > 1:
                    glob = np.bincount(list(assigned.values()), minlength=3) if assigned else np.zeros(3)
                    gdef = f[best] * (len(assigned) + 1) - glob[best]
                    best = best[gdef >= gdef.max() - 1e-9]
                j = int(best[0] if len(best) == 1 else rng.choice(best))
                assigned[i] = j
                counts[j] += 1

    for el in order:
        deal(by_el[el])
    deal([i for i in range(n) if i not in assigned])  # compounds without elements, if any
    out = {name: sorted(i for i, j in assigned.items() if j == k) for k, name in enumerate(SPLIT_NAMES)}
    check_disjoint(out, n)
    return out


def check_disjoint(splits: dict[str, Sequence[int]], n: int | None = None) -> None:
    """Assert that every compound is in exactly one split.

    Raises
    ------
    DataError
        Naming a compound found in two splits, or (when ``n`` is given) one in none.
    """
    seen: dict = {}
    for name, idx in splits.items():
        for i in idx:
            if i in seen:
                raise DataError(f"compound {i!r} is in both the {seen[i]!r} and the {name!r} split")
            seen[i] = name
    if n is not None and len(seen) != n:
        missing = sorted(set(range(n)) - set(seen))[:5]
        raise DataError(f"{n - len(seen)} compound(s) in no split, e.g. {missing}")


def split_summary(splits: dict[str, Sequence[int]], elements: Sequence[Sequence[str]],
                  strata: Sequence[Hashable]) -> dict:
    """Counts per split, per stratum and per element (the data of the paper's Figure S1c)."""
    out = {}
    for name, idx in splits.items():
        per_el: dict[str, Counter] = {}
        for i in idx:
            for el in set(elements[i]):
                per_el.setdefault(el, Counter())[str(strata[i])] += 1
        out[name] = {"n": len(idx), "strata": dict(Counter(str(strata[i]) for i in idx)),
                     "elements": {el: dict(c) for el, c in sorted(per_el.items())}}
    return out
