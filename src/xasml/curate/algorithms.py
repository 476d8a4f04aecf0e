"""Vectorised building blocks of ``xasml curate``: batch interpolation onto uniform grids,
spectrum hashing, exact and near-duplicate detection and the pointwise 3σ filter.

The curation follows Section III.B ("Data Curation and Cleaning") of the universal XAS
latent-space paper (curation of the 612,765 Materials Project FEFF K-edge site spectra down to
295,832), whose step 5 uses the outlier procedure of OmniXAS (its Ref. [16]).
Every function here works on many spectra at once (numpy, no per-spectrum Python loop on the
hot path) so that a whole database is curated in a few passes of record batches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: Row status codes shared by the curation passes (0 = kept so far).
OK = 0
INVALID = 1          # fewer than 2 points, NaN/inf, energies not strictly increasing, length mismatch
NO_OVERLAP = 2       # spectrum starts after the end of the grid
BEYOND_END = 3       # grid extends past the last energy of the spectrum
BELOW_START = 4      # grid starts before the first energy (only with fill_below="none")
SKIPPED = 5          # not asked for (``active`` False)

INTERP_REASONS = {INVALID: "invalid", NO_OVERLAP: "no_overlap", BEYOND_END: "grid_beyond_end",
                  BELOW_START: "grid_below_start"}


def row_validity(energy: np.ndarray, mu: np.ndarray | None, e_off: np.ndarray, m_off: np.ndarray | None) -> np.ndarray:
    """Which rows of a flattened batch are interpolable spectra.

    Parameters
    ----------
    energy, mu : ndarray, shape (T_e,), (T_m,)
        Concatenated energies (eV) and absorption values of all rows (``mu`` None: check the
        energies only).
    e_off, m_off : ndarray of int, shape (n + 1,)
        Row offsets into ``energy`` and ``mu`` (row ``r`` is ``energy[e_off[r]:e_off[r+1]]``).

    Returns
    -------
    ndarray of bool, shape (n,)
        True where the row has at least 2 points, as many ``mu`` as ``energy`` values, only
        finite values and strictly increasing energies.
    """
    n = len(e_off) - 1
    le = np.diff(e_off)
    ok = le >= 2
    if mu is not None:
        ok &= le == np.diff(m_off)
    if n == 0 or len(energy) == 0:
        return ok
    start = np.minimum(e_off[:-1], len(energy) - 1)
    good = np.isfinite(energy)
    inc = np.empty(len(energy), dtype=bool)
    inc[0] = True
    with np.errstate(invalid="ignore"):
        inc[1:] = energy[1:] > energy[:-1]
    inc[e_off[:-1][e_off[:-1] < len(energy)]] = True  # a row's first point has no predecessor
    good &= inc
    ok &= np.logical_and.reduceat(good, start)
    if mu is not None and len(mu):
        mstart = np.minimum(m_off[:-1], len(mu) - 1)
        ok &= np.logical_and.reduceat(np.isfinite(mu), mstart)
    return ok


def interpolate_rows(energy: np.ndarray, mu: np.ndarray, e_off: np.ndarray, m_off: np.ndarray,
                     start: np.ndarray, step: float | np.ndarray, n_points: int,
                     fill_below: str = "edge", active: np.ndarray | None = None,
                     out: np.ndarray | None = None, compact: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linearly interpolate many spectra at once onto per-row uniform grids.

    Row ``r`` is evaluated at ``x[r, g] = start[r] + step * g``, ``g = 0 .. n_points - 1``.
    The row checks (validity, range) are vectorised over the batch; the values come from one
    compiled loop over all rows (numba, see :func:`_interp_kernel`) and equal
    ``np.interp(x[r], energy_r, mu_r)`` bitwise.

    Parameters
    ----------
    energy, mu : ndarray, shape (T,)
        Concatenated energies (eV, strictly increasing within a row) and absorption values.
    e_off, m_off : ndarray of int, shape (n + 1,)
        Row offsets into ``energy`` and ``mu``.
    start : ndarray, shape (n,)
        First grid energy of each row, eV.
    step : float or ndarray of shape (n,)
        Grid spacing, eV (> 0).
    n_points : int
        Grid points per row.
    fill_below : {"edge", "none"}
        Grid points below a row's first energy take its first ``mu`` value (``"edge"``, what
        ``np.interp`` does; FEFF spectra start in the flat pre-edge) or make the row fail with
        :data:`BELOW_START` (``"none"``).
    active : ndarray of bool, shape (n,), optional
        Rows to interpolate; the others get :data:`SKIPPED` and NaN (no copy of the batch needed).
    out : ndarray, optional
        Buffer of at least (n, n_points) float64 to write into (reused across batches).
    compact : bool
        Return only the rows with status :data:`OK`, in order (shape (n_ok, n_points)).

    Returns
    -------
    values : ndarray, shape (n, n_points) (or (n_ok, n_points) if ``compact``), float64
        Interpolated ``mu``; NaN in failed rows.
    status : ndarray of int8, shape (n,)
        :data:`OK` or the failure code (:data:`INVALID`, :data:`NO_OVERLAP`,
        :data:`BEYOND_END`, :data:`BELOW_START`, :data:`SKIPPED`).
    filled : ndarray of bool, shape (n,)
        True where grid points below the first energy were filled (``fill_below="edge"``).

    Raises
    ------
    ValueError
        If ``fill_below`` is not ``"edge"`` or ``"none"``.
    """
    if fill_below not in ("edge", "none"):
        raise ValueError(f"fill_below must be 'edge' or 'none', got {fill_below!r}")
    energy = np.asarray(energy, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    e_off = np.asarray(e_off, dtype=np.int64)
    m_off = np.asarray(m_off, dtype=np.int64)
    n = len(e_off) - 1
    N = int(n_points)
    start = np.asarray(start, dtype=np.float64)
    step_r = np.broadcast_to(np.asarray(step, dtype=np.float64), (n,))
    if out is None:
        out = np.empty((n, N))
    buf = out.reshape(-1)[: n * N].reshape(n, N)
    status = np.full(n, INVALID, dtype=np.int8)
    filled = np.zeros(n, dtype=bool)
    valid = row_validity(energy, mu, e_off, m_off)
    if active is not None:
        active = np.asarray(active, dtype=bool)
        status[~active] = SKIPPED
        valid &= active
    if not valid.any():
        if compact:
            return buf[:0], status, filled
        buf.fill(np.nan)
        return buf, status, filled
    e_first = np.where(valid, energy[np.minimum(e_off[:-1], max(len(energy) - 1, 0))], np.nan)
    e_last = np.where(valid, energy[np.maximum(e_off[1:] - 1, 0)], np.nan)
    x_first = start
    x_last = start + step_r * (N - 1)
    st = np.where(valid, OK, INVALID).astype(np.int8)
    if active is not None:
        st[~active] = SKIPPED
    st[valid & (e_first > x_last)] = NO_OVERLAP
    st[(st == OK) & (x_last > e_last)] = BEYOND_END
    below = (st == OK) & (x_first < e_first)
    if fill_below == "none":
        st[below] = BELOW_START
    rows = np.flatnonzero(st == OK)
    status[:] = st
    filled[rows] = below[rows]
    if compact:
        res = buf[: rows.size]
        dest = np.arange(rows.size)
    else:
        res = buf
        dest = rows
        if rows.size < n:
            res[st != OK] = np.nan
    if rows.size:
        _interp_kernel()(energy, mu, e_off, m_off, rows, dest, start, step_r, N, res)
    return res, status, filled


_KERNEL = None


def _interp_loop(energy, mu, e_off, m_off, rows, dest, start, step, N, out):
    """Per-row ``np.interp`` (used when numba is not installed)."""
    g = np.arange(N, dtype=np.float64)
    for r, d in zip(rows.tolist(), dest.tolist()):
        out[d] = np.interp(start[r] + step[r] * g, energy[e_off[r]:e_off[r + 1]], mu[m_off[r]:m_off[r + 1]])


def _interp_kernel():
    """The compiled interpolation kernel (numba, cached on disk) or the ``np.interp`` loop.

    The kernel walks each row's knots once (O(points + grid) per row) and evaluates
    ``slope * (x - xp[j]) + fp[j]`` exactly as ``np.interp`` does (bitwise equal results,
    first/last value outside the knots). Measured on 8,192 FEFF-like rows (165 knots, 200 grid
    points) on the 2-core development machine: numba 1.0 us/row, per-row ``np.interp`` 2.7 us/row,
    a pure-numpy vectorised formulation (bincount/repeat segment search + gathers) 5-7 us/row,
    being bound by ~15 memory passes over the (rows x grid) arrays.
    """
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with the umap extra
        _KERNEL = _interp_loop
        return _KERNEL

    def kernel(energy, mu, e_off, m_off, rows, dest, start, step, N, out):  # pragma: no cover - compiled
        for t in range(rows.size):
            r = rows[t]
            d = dest[t]
            e0 = e_off[r]
            m0 = m_off[r]
            L = e_off[r + 1] - e0
            s = start[r]
            h = step[r]
            j = 0
            for g in range(N):
                x = s + h * g
                while j < L - 1 and energy[e0 + j + 1] <= x:
                    j += 1
                if j == L - 1:
                    out[d, g] = mu[m0 + L - 1]
                elif x <= energy[e0]:
                    out[d, g] = mu[m0]
                else:
                    xp = energy[e0 + j]
                    if x == xp:
                        out[d, g] = mu[m0 + j]
                    else:
                        slope = (mu[m0 + j + 1] - mu[m0 + j]) / (energy[e0 + j + 1] - xp)
                        out[d, g] = slope * (x - xp) + mu[m0 + j]

    try:
        _KERNEL = numba.njit(cache=True, nogil=True)(kernel)
    except RuntimeError:  # no writable cache location: compile per process
        _KERNEL = numba.njit(cache=False, nogil=True)(kernel)
    return _KERNEL


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (start, length) pair."""
    tot = int(lengths.sum())
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(tot)


def block_bounds(n_points: int, n_blocks: int = 8) -> np.ndarray:
    """Start indices of ``n_blocks`` contiguous, near-equal blocks covering ``n_points`` points.

    Parameters
    ----------
    n_points : int
        Grid points.
    n_blocks : int
        Blocks (at most ``n_points``).

    Returns
    -------
    ndarray of int64, shape (n_blocks,)
    """
    n_blocks = max(1, min(n_blocks, n_points))
    return np.array([b[0] for b in np.array_split(np.arange(n_points), n_blocks)], dtype=np.int64)


def block_means(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Means of each row over the grid blocks starting at ``bounds``.

    If two spectra are within ``tol`` at every point, their block means are within ``tol`` too:
    these are the exact pre-filter keys of :func:`near_duplicate_pairs` and the hash keys of
    :func:`exact_duplicates`.

    Parameters
    ----------
    values : ndarray, shape (n, m)
        Gridded spectra.
    bounds : ndarray of int
        Block starts (:func:`block_bounds`).

    Returns
    -------
    ndarray, shape (n, len(bounds))
    """
    values = np.asarray(values, dtype=np.float64)
    sizes = np.diff(np.append(bounds, values.shape[1]))
    if len(values) == 0:
        return np.zeros((0, len(bounds)))
    if (sizes == sizes[0]).all():  # equal blocks: a reshape, much faster than reduceat on axis 1
        return values.reshape(len(values), len(bounds), sizes[0]).sum(axis=2) / sizes[0]
    return np.add.reduceat(values, bounds, axis=1) / sizes


def exact_duplicates(group: np.ndarray, keys: np.ndarray, eligible: np.ndarray,
                     fetch: Callable[[np.ndarray], np.ndarray], chunk_rows: int = 20_000) -> np.ndarray:
    """Rows whose gridded spectrum equals that of an earlier eligible row of the same group at
    every grid point (paper step 4, "exact duplicates ... removed across the board").

    The hash of a spectrum is a 64-bit fingerprint of its group and its block means
    (:func:`block_means`, computed deterministically, so equal spectra have equal keys). Rows are
    sorted by hash; every run of equal hashes is then compared value by value on the full
    spectra, so the result is exact - a hash collision of different spectra costs one
    comparison and removes nothing.

    Parameters
    ----------
    group : ndarray of int, shape (n,)
        Element (element + edge) code of each row.
    keys : ndarray, shape (n, B)
        Block means of the gridded spectra.
    eligible : ndarray of bool, shape (n,)
        Rows taking part (kept by the earlier steps).
    fetch : callable
        ``fetch(rows)`` returns the gridded spectra of the given rows, shape (len(rows), n_points).
    chunk_rows : int
        Spectra fetched at a time.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for every repeat; the first occurrence (lowest row) is not marked.
    """
    idx = np.flatnonzero(eligible)
    dup = np.zeros(len(group), dtype=bool)
    if idx.size < 2:
        return dup
    fp = _fingerprint(group[idx], keys[idx])
    s = idx[np.lexsort((idx, fp))]
    fs = np.sort(fp)
    same = fs[1:] == fs[:-1]
    if not same.any():
        return dup
    new_run = np.concatenate([[True], ~same])
    run_id = np.cumsum(new_run) - 1
    sizes = np.bincount(run_id)
    in_run = sizes[run_id] >= 2
    members = s[in_run]                             # rows in runs of 2+, runs contiguous, rows ascending
    mrun = run_id[in_run]
    bounds = np.flatnonzero(np.concatenate([[True], mrun[1:] != mrun[:-1], [True]]))
    a = 0
    while a < len(bounds) - 1:                      # fetch whole runs, chunk by chunk
        b = a + 1
        while b < len(bounds) - 1 and bounds[b + 1] - bounds[a] <= chunk_rows:
            b += 1
        rows = members[bounds[a]:bounds[b]]
        X = fetch(rows)
        lo = bounds[a:b] - bounds[a]
        size = bounds[a + 1:b + 1] - bounds[a:b]
        two = lo[size == 2]                         # the common case, vectorised
        eq = np.all(X[two] == X[two + 1], axis=1)
        dup[rows[two[eq] + 1]] = True
        for l0, sz in zip(lo[size > 2].tolist(), size[size > 2].tolist()):
            reps: list[int] = [l0]
            for m in range(l0 + 1, l0 + sz):
                if any(np.array_equal(X[m], X[q]) for q in reps):
                    dup[rows[m]] = True
                else:
                    reps.append(m)
        a = b
    return dup


def _fingerprint(group: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """64-bit fingerprint of (group, block means): splitmix64-mixed words, order-dependent sum.
    Equal inputs give equal fingerprints; collisions only cost a comparison."""
    k = np.ascontiguousarray(keys + 0.0)            # -0.0 -> 0.0, as values compare equal
    words = np.concatenate([k.view(np.uint64), group.astype(np.uint64)[:, None]], axis=1)
    with np.errstate(over="ignore"):
        z = words + (np.arange(1, words.shape[1] + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        return z.sum(axis=1, dtype=np.uint64)


def near_duplicate_pairs(keys: np.ndarray, tol: float, fetch: Callable[[np.ndarray], np.ndarray],
                         cell_dims: int = 3, chunk_pairs: int = 50_000) -> tuple[np.ndarray, np.ndarray, dict]:
    """All pairs ``i < j`` of spectra within ``tol`` of each other at every grid point.

    Exact (no false pairs, no missed pairs): ``max_k |x_ik - x_jk| <= tol`` implies
    ``|m_ib - m_jb| <= tol`` for every block mean ``m_b`` (:func:`block_means`). The spectra are
    put in cells of width ``w = tol * (1 + 1e-9)`` on the ``cell_dims`` block means with the
    largest spread, so a close pair lies in the same or adjacent cells (3**cell_dims
    neighbours, looked up with ``searchsorted`` on sorted cell codes); the candidate pairs are
    then pruned on all block means and finally checked exactly (Chebyshev distance on the full
    gridded spectra, fetched from storage in chunks). The ``1e-9`` margins absorb the rounding
    of the block means, so rounding can only add candidates, never lose a pair.

    Parameters
    ----------
    keys : ndarray, shape (n, B)
        Block means of the ``n`` spectra (one group, row order = priority order).
    tol : float
        Tolerance on every grid point (absorption units; paper: 0.005).
    fetch : callable
        ``fetch(rows)`` returns the gridded spectra of the given (sorted, unique) local rows,
        shape (len(rows), n_points).
    cell_dims : int
        Block means used for the cells (1-3).
    chunk_pairs : int
        Candidate pairs checked per chunk (bounds memory).

    Returns
    -------
    i, j : ndarray of int64
        Local row indices of the close pairs, ``i < j``.
    stats : dict
        ``candidates`` (pairs after the cell lookup), ``prefiltered`` (after the block-mean
        check), ``pairs`` (exact).
    """
    keys = np.asarray(keys, dtype=np.float64)
    n, B = keys.shape if keys.ndim == 2 else (0, 0)
    stats = {"candidates": 0, "prefiltered": 0, "pairs": 0}
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty, stats
    w = tol * (1.0 + 1e-9)
    eps = 1e-9 * max(1.0, float(np.abs(keys).max()))
    d = max(1, min(cell_dims, B))
    dims = np.argsort(-keys.std(axis=0), kind="stable")[:d]
    cells = np.floor(keys[:, dims] / w).astype(np.int64)
    cells -= cells.min(axis=0) - 1                               # >= 1, room for the -1 neighbour
    span = cells.max(axis=0) + 2
    mult = np.ones(d, dtype=np.int64)
    for a in range(1, d):
        mult[a] = mult[a - 1] * span[a - 1]
    code = cells @ mult
    order = np.argsort(code, kind="stable")
    sc = code[order]
    ucode, ustart = np.unique(sc, return_index=True)
    uend = np.append(ustart[1:], n)
    offsets = np.array(np.meshgrid(*[[-1, 0, 1]] * d, indexing="ij")).reshape(d, -1).T @ mult
    out_i, out_j = [], []
    cell_of = np.repeat(np.arange(len(ucode)), uend - ustart)    # unique cell of each sorted row
    for off in offsets:
        nbu = ucode + off                                          # sorted queries: one per cell
        pos = np.minimum(np.searchsorted(ucode, nbu), len(ucode) - 1)
        hit_u = ucode[pos] == nbu
        hit = hit_u[cell_of]
        ri = order[hit]
        pr = pos[cell_of[hit]]
        cs, ce = ustart[pr], uend[pr]
        cnt = ce - cs
        # expand (row, every member of the neighbour cell) in chunks of pairs
        cum = np.cumsum(cnt)
        lo = 0
        while lo < len(ri):
            base = cum[lo - 1] if lo else 0
            hi = int(np.searchsorted(cum, base + chunk_pairs, side="right"))
            hi = max(hi, lo + 1)
            c = cnt[lo:hi]
            tot = int(c.sum())
            if tot:
                a = np.repeat(ri[lo:hi], c)
                k = np.repeat(cs[lo:hi], c) + (np.arange(tot) - np.repeat(np.cumsum(c) - c, c))
                b = order[k]
                m = a < b
                a, b = a[m], b[m]
                stats["candidates"] += int(a.size)
                if a.size:
                    m = np.all(np.abs(keys[a] - keys[b]) <= tol + eps, axis=1)
                    a, b = a[m], b[m]
                    stats["prefiltered"] += int(a.size)
                    if a.size:
                        ia, ib = _chebyshev_close(a, b, tol, fetch)
                        out_i.append(ia)
                        out_j.append(ib)
            lo = hi
    if not out_i:
        return empty, empty, stats
    i = np.concatenate(out_i)
    j = np.concatenate(out_j)
    stats["pairs"] = int(i.size)
    return i, j, stats


def _chebyshev_close(a: np.ndarray, b: np.ndarray, tol: float, fetch) -> tuple[np.ndarray, np.ndarray]:
    """Keep the pairs ``(a, b)`` whose spectra are within ``tol`` at every point (exact check)."""
    need, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    X = fetch(need)
    ia, ib = inv[: a.size], inv[a.size:]
    keep = np.ones(a.size, dtype=bool)
    for s in range(0, a.size, 20_000):
        sl = slice(s, s + 20_000)
        keep[sl] = np.max(np.abs(X[ia[sl]] - X[ib[sl]]), axis=1) <= tol
    return a[keep], b[keep]


def greedy_keep_first(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Resolve close pairs "keep the first": row ``j`` is removed when it is close to an
    earlier row that is itself kept.

    Parameters
    ----------
    n : int
        Number of rows (priority = row order).
    i, j : ndarray of int
        Close pairs with ``i < j``.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for the removed rows. Order dependent by design (paper step 4 keeps one spectrum
        of each group of near-duplicates); a chain a~b, b~c with a !~ c removes only b.
    """
    removed = np.zeros(n, dtype=bool)
    if len(j) == 0:
        return removed
    o = np.lexsort((i, j))
    i, j = i[o], j[o]
    uj, first = np.unique(j, return_index=True)
    # fast path: when no "earlier" row is itself a later row of a pair, every j goes
    if not np.isin(i, uj).any():
        removed[uj] = True
        return removed
    bounds = np.append(first, len(j))
    il = i.tolist()
    for t, jj in enumerate(uj.tolist()):
        for ii in il[bounds[t]:bounds[t + 1]]:
            if not removed[ii]:
                removed[jj] = True
                break
    return removed


def outlier_bounds(mean: np.ndarray, std: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise acceptance band ``mean ± sigma * std`` of the 3σ filter (paper step 5 / OmniXAS).

    A margin of ``1e-9 * max(1, |mean|)`` is added on both sides so that floating-point rounding
    of the mean never rejects a spectrum equal to it (e.g. a grid point where every spectrum has
    the same value and ``std`` is 0).

    Parameters
    ----------
    mean, std : ndarray, shape (m,)
        Per-point mean and population standard deviation of an element's spectra.
    sigma : float
        Width in standard deviations (paper: 3).

    Returns
    -------
    lower, upper : ndarray, shape (m,)
    """
    margin = 1e-9 * np.maximum(1.0, np.abs(mean))
    return mean - sigma * std - margin, mean + sigma * std + margin
