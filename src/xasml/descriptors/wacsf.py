"""Weighted atom-centred symmetry functions (wACSF) of an absorbing site.

The descriptor of Gastegger et al. (J. Chem. Phys. 148, 241709, 2018) as used by XANESNET
(Rankine & Penfold, J. Chem. Phys. 156, 164102, 2022, §II.B.2). For an absorbing site ``i`` the
feature vector is (Eq. 1)

    G_i = {G1_i, G2_i,1 ... G2_i,n, G4_i,1 ... G4_i,m}

with (Eqs. 2-4)

    G1_i = sum_{j != i} fc(r_ij)
    G2_i = sum_{j != i} Z_j fc(r_ij) exp(-eta (r_ij - mu)^2)
    G4_i = 2^(1 - zeta) sum_{j != i} sum_{k != i, j} Z_j Z_k (1 + lambda cos theta_jik)^zeta
           fc(r_ij) fc(r_ik) fc(r_jk) exp(-eta (r_ij - mu)^2) exp(-eta (r_ik - mu)^2) exp(-eta (r_jk - mu)^2)

and the cosine cutoff (Eq. 5) ``fc(r) = 0.5 (cos(pi r / r_c) + 1)`` for ``r <= r_c``, else 0.
Both sums over ``j`` and ``k`` run over ordered pairs, exactly as written in Eq. 4.

The (eta, mu) pairs follow Gastegger's parameterisation on an auxiliary radial grid ``R`` of
``k`` points evenly spaced from ``r_min + 0.5`` to ``r_max - 0.5`` Å: "centred" (Eq. 6,
``mu = 0``, ``eta_k = 1 / (2 r_k^2)``) or "shifted" (Eq. 7, ``mu = r_k``,
``eta = 1 / (2 Δr^2)``). With the defaults (``r_max = 6``, 32 shifted G2) the G2 centres are
0.50, 0.66, ..., 1.47, 1.63, 1.79, ... Å, the values quoted in the paper's §III.C.

G4 features are ordered radial pair (outermost), then lambda, then zeta (innermost), which is the
order of the XANESNET V K-edge descriptor files.

Periodic structures are handled by cutting the cluster of every atom (from all periodic images)
within ``r_cut`` of the absorber; the descriptor of that cluster is the descriptor of the site.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

from xasml.errors import DataError

__all__ = ["WACSF", "cosine_cutoff", "gastegger_parameters", "site_environment",
           "structure_environment", "wacsf_reference"]


def cosine_cutoff(r: np.ndarray, r_cut: float) -> np.ndarray:
    """Cosine cutoff function, paper Eq. 5.

    Parameters
    ----------
    r : ndarray
        Distances in Å (any shape).
    r_cut : float
        Cutoff radius in Å.

    Returns
    -------
    ndarray
        ``0.5 (cos(pi r / r_cut) + 1)`` where ``r <= r_cut``, else 0; same shape as ``r``.
    """
    r = np.asarray(r)
    if not np.issubdtype(r.dtype, np.floating):
        r = r.astype(float)
    return np.where(r <= r_cut, 0.5 * (np.cos(np.minimum(r, r_cut) * (np.pi / r_cut)) + 1.0), 0.0).astype(r.dtype)


def gastegger_parameters(n: int, r_min: float, r_max: float, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """(eta, mu) pairs on Gastegger's auxiliary radial grid, paper Eqs. 6 and 7.

    Parameters
    ----------
    n : int
        Number of pairs (points of the auxiliary grid).
    r_min, r_max : float
        The grid spans ``r_min + 0.5`` to ``r_max - 0.5`` Å.
    scheme : {"shifted", "centred"}
        "shifted": ``mu = r_k``, ``eta = 1 / (2 Δr^2)`` (Eq. 7); "centred": ``mu = 0``,
        ``eta = 1 / (2 r_k^2)`` (Eq. 6).

    Returns
    -------
    eta : ndarray, shape (n,)
        Gaussian exponents in Å⁻².
    mu : ndarray, shape (n,)
        Gaussian centres in Å.
    """
    if n < 1:
        return np.zeros(0), np.zeros(0)
    lo, hi = r_min + 0.5, r_max - 0.5
    if not hi > lo:
        raise ValueError(f"auxiliary radial grid is empty: r_max - r_min must exceed 1 Å (got {r_min}..{r_max})")
    r = np.linspace(lo, hi, n)
    if scheme == "shifted":
        dr = r[1] - r[0] if n > 1 else (hi - lo)
        return np.full(n, 1.0 / (2.0 * dr ** 2)), r
    if scheme in ("centred", "centered"):
        return 1.0 / (2.0 * r ** 2), np.zeros(n)
    raise ValueError(f"unknown parameterisation scheme {scheme!r}: expected 'shifted' or 'centred'")


def _power(x: np.ndarray, zeta: float) -> np.ndarray:
    """``x ** zeta``, by repeated squaring when ``zeta`` is a power of two (much faster than pow)."""
    k = int(zeta)
    if k == zeta and k >= 1 and (k & (k - 1)) == 0:
        out = x
        while k > 1:
            out = out * out
            k //= 2
        return out
    return x ** zeta


def site_environment(numbers: Sequence[int], positions: np.ndarray, absorbing_index: int = 0,
                     r_cut: float = 6.0, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of one site of a molecule (or finite cluster) within ``r_cut``.

    Parameters
    ----------
    numbers : sequence of int, length n_atoms
        Atomic numbers.
    positions : ndarray, shape (n_atoms, 3)
        Cartesian coordinates in Å.
    absorbing_index : int
        0-based index of the absorbing atom.
    r_cut : float
        Cutoff radius in Å.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    z : ndarray, shape (n_neighbours,)
        Atomic numbers of the neighbours (absorber excluded).
    rel : ndarray, shape (n_neighbours, 3)
        Neighbour positions relative to the absorber, Å.

    Raises
    ------
    DataError
        If the shapes disagree, the index is out of range or an atom sits on the absorber.
    """
    z = np.asarray(numbers, dtype=int).ravel()
    pos = np.asarray(positions, dtype=float)
    where = f"{source}: " if source else ""
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(z):
        raise DataError(f"{where}positions must have shape ({len(z)}, 3), got {pos.shape}")
    if not 0 <= absorbing_index < len(z):
        raise DataError(f"{where}absorbing_index {absorbing_index} out of range for {len(z)} atoms")
    rel = pos - pos[absorbing_index]
    d = np.linalg.norm(rel, axis=1)
    keep = d < r_cut
    keep[absorbing_index] = False
    if np.any(d[keep] < 1e-6):
        raise DataError(f"{where}an atom coincides with the absorbing atom {absorbing_index}")
    return z[keep], rel[keep]


def structure_environment(structure, absorbing_index: int, r_cut: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of one site of a periodic structure within ``r_cut``, across periodic images.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal (ordered).
    absorbing_index : int
        0-based index of the absorbing site.
    r_cut : float
        Cutoff radius in Å.

    Returns
    -------
    z, rel : see :func:`site_environment`.

    Raises
    ------
    DataError
        If the index is out of range or the structure is disordered.
    """
    n = len(structure)
    if not 0 <= absorbing_index < n:
        raise DataError(f"absorbing_index {absorbing_index} out of range for a structure of {n} sites")
    if not structure.is_ordered:
        raise DataError("wACSF needs an ordered structure (one element per site)")
    site = structure[absorbing_index]
    neigh = structure.get_neighbors(site, r_cut)
    if not neigh:
        return np.zeros(0, dtype=int), np.zeros((0, 3))
    z = np.array([nb.specie.Z for nb in neigh], dtype=int)
    rel = np.array([nb.coords for nb in neigh]) - site.coords
    d = np.linalg.norm(rel, axis=1)
    keep = (d < r_cut) & (d > 1e-6)
    return z[keep], rel[keep]


@dataclass
class WACSF:
    """The wACSF descriptor of an absorbing site (Rankine & Penfold 2022, Eqs. 1-7).

    Parameters
    ----------
    n_g2 : int
        Number of radial G2 functions (32 in the paper).
    n_g4 : int
        Number of angular G4 functions (64 in the paper); must be a multiple of
        ``len(lambdas) * len(zetas)``; the quotient is the number of (eta, mu) pairs.
    r_min, r_max : float
        Range of the auxiliary radial grid in Å (grid from ``r_min + 0.5`` to ``r_max - 0.5``).
    r_cut : float
        Cutoff radius of ``fc`` in Å (6.0 in the paper).
    lambdas : tuple of float
        Values of λ (±1).
    zetas : tuple of float
        Values of ζ (1, 2, 4, 8 in the paper's final vector).
    g2_scheme, g4_scheme : {"shifted", "centred"}
        Parameterisation of G2 and G4 (paper: shifted G2, centred G4).
    dtype : {"float32", "float64"}
        Precision of the three-body (G4) pair arithmetic; float32 (relative error ~1e-6) is about
        twice as fast. G1 and G2 are always float64.

    Examples
    --------
    >>> w = WACSF()
    >>> w.n_features
    97
    """

    n_g2: int = 32
    n_g4: int = 64
    r_min: float = 0.0
    r_max: float = 6.0
    r_cut: float = 6.0
    lambdas: tuple = (1.0, -1.0)
    zetas: tuple = (1.0, 2.0, 4.0, 8.0)
    g2_scheme: str = "shifted"
    g4_scheme: str = "centred"
    dtype: str = "float32"
    _chunk_pairs: int = field(default=60_000, repr=False)

    def __post_init__(self) -> None:
        self.lambdas = tuple(float(x) for x in self.lambdas)
        self.zetas = tuple(float(x) for x in self.zetas)
        n_ang = len(self.lambdas) * len(self.zetas)
        if self.n_g4 and (n_ang == 0 or self.n_g4 % n_ang):
            raise ValueError(f"n_g4 ({self.n_g4}) must be a multiple of len(lambdas) * len(zetas) ({n_ang})")
        self.g2_eta, self.g2_mu = gastegger_parameters(self.n_g2, self.r_min, self.r_max, self.g2_scheme)
        n_rad4 = self.n_g4 // n_ang if self.n_g4 else 0
        self.g4_eta, self.g4_mu = gastegger_parameters(n_rad4, self.r_min, self.r_max, self.g4_scheme)

    # -- description -----------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """Length of the feature vector: 1 + n_g2 + n_g4."""
        return 1 + self.n_g2 + self.n_g4

    @property
    def feature_names(self) -> list[str]:
        """Names of the features, e.g. ``G2[mu=1.63,eta=19.2]`` and ``G4[eta=..,lambda=+1,zeta=8]``."""
        names = ["G1"]
        names += [f"G2[mu={m:.2f},eta={e:.3g}]" for e, m in zip(self.g2_eta, self.g2_mu)]
        for e, m in zip(self.g4_eta, self.g4_mu):
            for lam in self.lambdas:
                for zeta in self.zetas:
                    names.append(f"G4[mu={m:.2f},eta={e:.3g},lambda={lam:+g},zeta={zeta:g}]")
        return names

    @property
    def feature_groups(self) -> np.ndarray:
        """Group of each feature: ``"G1"``, ``"G2"`` or ``"G4"``, shape (n_features,)."""
        return np.array(["G1"] + ["G2"] * self.n_g2 + ["G4"] * self.n_g4)

    def to_dict(self) -> dict:
        """JSON-serialisable parameters (inverse of :meth:`from_dict`)."""
        d = asdict(self)
        d.pop("_chunk_pairs", None)
        d["lambdas"] = list(self.lambdas)
        d["zetas"] = list(self.zetas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "WACSF":
        """Build from :meth:`to_dict` output."""
        known = {"n_g2", "n_g4", "r_min", "r_max", "r_cut", "lambdas", "zetas", "g2_scheme", "g4_scheme", "dtype"}
        unknown = set(d) - known
        if unknown:
            raise DataError(f"wACSF parameters: unknown field(s) {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)

    # -- evaluation --------------------------------------------------------------------------
    def from_environments(self, environments: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Descriptors of many sites given their neighbourhoods (vectorised).

        Parameters
        ----------
        environments : sequence of (z, rel)
            For each site, the neighbours' atomic numbers, shape (m,), and positions relative to
            the absorber in Å, shape (m, 3) (see :func:`site_environment`). Neighbours beyond
            ``r_cut`` are allowed (they contribute zero).

        Returns
        -------
        ndarray, shape (n_sites, n_features)
        """
        n = len(environments)
        out = np.zeros((n, self.n_features))
        if n == 0:
            return out
        counts = np.array([len(z) for z, _ in environments])
        order = np.argsort(counts, kind="stable")
        start = 0
        while start < n:
            # grow the chunk while the padded pair count stays bounded
            stop = start + 1
            while stop < n:
                m_next = max(int(counts[order[stop]]), 1)
                if (stop + 1 - start) * m_next * m_next > self._chunk_pairs:
                    break
                stop += 1
            idx = order[start:stop]
            out[idx] = self._batch([environments[i] for i in idx])
            start = stop
        return out

    def _batch(self, envs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Descriptors of a chunk of sites, padded to a common neighbour count."""
        b = len(envs)
        m = max(max(len(z) for z, _ in envs), 1)
        Z = np.zeros((b, m))
        P = np.zeros((b, m, 3))
        for i, (z, rel) in enumerate(envs):
            Z[i, :len(z)] = z
            P[i, :len(z)] = rel
        r = np.linalg.norm(P, axis=2)                          # (b, m)
        valid = (Z > 0) & (r < self.r_cut) & (r > 0)
        fc = np.where(valid, cosine_cutoff(r, self.r_cut), 0.0)
        Zw = Z * valid
        out = np.empty((b, self.n_features))
        out[:, 0] = fc.sum(axis=1)                              # Eq. 2
        if self.n_g2:                                           # Eq. 3
            g = np.exp(-self.g2_eta[None, None, :] * (r[:, :, None] - self.g2_mu[None, None, :]) ** 2)
            out[:, 1:1 + self.n_g2] = np.einsum("bj,bjn->bn", Zw * fc, g)
        if self.n_g4:                                           # Eq. 4
            out[:, 1 + self.n_g2:] = self._g4(P, r, fc, Zw, m)
        return out

    def _g4(self, P: np.ndarray, r: np.ndarray, fc: np.ndarray, Zw: np.ndarray, m: int) -> np.ndarray:
        """Angular terms, summed over unordered pairs j < k and doubled (Eq. 4 is symmetric in j, k)."""
        b = len(P)
        ju, ku = np.triu_indices(m, k=1)
        if ju.size == 0:
            return np.zeros((b, self.n_g4))
        if self.dtype != "float64":  # pair arrays dominate the cost; float32 halves it
            P, r, fc, Zw = (x.astype(self.dtype) for x in (P, r, fc, Zw))
        gram = P @ P.transpose(0, 2, 1)                         # r_ij . r_ik, (b, m, m)
        dot = gram[:, ju, ku]
        rj, rk = r[:, ju], r[:, ku]
        a = Zw * fc
        w = a[:, ju] * a[:, ku]                                 # Z_j Z_k fc(r_ij) fc(r_ik)
        rjk2 = np.maximum(rj * rj + rk * rk - 2.0 * dot, 0.0)
        rjk = np.sqrt(rjk2)
        w *= cosine_cutoff(rjk, self.r_cut)
        cos = np.divide(dot, rj * rk, out=np.zeros_like(dot), where=w > 0)
        np.clip(cos, -1.0, 1.0, out=cos)
        # angular factors 2^(1-zeta) (1 + lambda cos)^zeta, shape (b, n_lambda * n_zeta, p)
        ang = np.empty((b, len(self.lambdas) * len(self.zetas), cos.shape[1]), dtype=cos.dtype)
        c = 0
        for lam in self.lambdas:
            base = 1.0 + lam * cos
            for zeta in self.zetas:
                np.multiply(_power(base, zeta), np.asarray(2.0 ** (1.0 - zeta), dtype=cos.dtype), out=ang[:, c])
                c += 1
        # radial factors w * exp(-eta[(rij-mu)^2 + (rik-mu)^2 + (rjk-mu)^2]), shape (b, n_rad, p)
        eta, mu = self.g4_eta.astype(r.dtype), self.g4_mu.astype(r.dtype)
        if np.all(mu == 0):
            s = (rj * rj + rk * rk + rjk2)[:, None, :]
        else:
            s = ((rj[:, None, :] - mu[:, None]) ** 2 + (rk[:, None, :] - mu[:, None]) ** 2
                 + (rjk[:, None, :] - mu[:, None]) ** 2)
        rad = np.exp(-eta[:, None] * s)
        rad *= w[:, None, :]
        g = 2.0 * (rad @ ang.transpose(0, 2, 1))               # (b, n_rad, n_ang)
        return g.reshape(b, -1).astype(float)

    def molecule(self, numbers: Sequence[int], positions: np.ndarray, absorbing_index: int = 0) -> np.ndarray:
        """Descriptor of one site of a molecule.

        Parameters
        ----------
        numbers : sequence of int, length n_atoms
            Atomic numbers.
        positions : ndarray, shape (n_atoms, 3)
            Cartesian coordinates, Å.
        absorbing_index : int
            0-based index of the absorber (XANESNET xyz files put it first).

        Returns
        -------
        ndarray, shape (n_features,)
        """
        return self.from_environments([site_environment(numbers, positions, absorbing_index, self.r_cut)])[0]

    def molecules(self, molecules: Iterable[tuple[Sequence[int], np.ndarray]], absorbing_index: int = 0) -> np.ndarray:
        """Descriptors of many molecules (one site each), vectorised.

        Parameters
        ----------
        molecules : iterable of (numbers, positions)
            As in :meth:`molecule`.
        absorbing_index : int
            Index of the absorber in every molecule.

        Returns
        -------
        ndarray, shape (n_molecules, n_features)
        """
        return self.from_environments([site_environment(z, p, absorbing_index, self.r_cut) for z, p in molecules])

    def structure(self, structure, absorbing_index: int) -> np.ndarray:
        """Descriptor of one site of a periodic pymatgen ``Structure`` (neighbours across images).

        Returns
        -------
        ndarray, shape (n_features,)
        """
        return self.from_environments([structure_environment(structure, absorbing_index, self.r_cut)])[0]

    def structures(self, sites: Iterable[tuple[object, int]]) -> np.ndarray:
        """Descriptors of many (structure, absorbing_index) sites.

        Returns
        -------
        ndarray, shape (n_sites, n_features)
        """
        return self.from_environments([structure_environment(s, i, self.r_cut) for s, i in sites])


def wacsf_reference(w: WACSF, numbers: Sequence[int], positions: np.ndarray, absorbing_index: int = 0) -> np.ndarray:
    """Direct, loop-by-loop evaluation of paper Eqs. 2-4 (slow; for testing :class:`WACSF`).

    Parameters
    ----------
    w : WACSF
        Parameters.
    numbers, positions, absorbing_index
        As in :meth:`WACSF.molecule`.

    Returns
    -------
    ndarray, shape (w.n_features,)
    """
    import math

    pos = np.asarray(positions, dtype=float)
    i = absorbing_index
    n = len(numbers)
    rc = w.r_cut

    def fc(x):
        return 0.5 * (math.cos(math.pi * x / rc) + 1.0) if x <= rc else 0.0

    def dist(a, b):
        return math.sqrt(sum((pos[a][c] - pos[b][c]) ** 2 for c in range(3)))

    g1 = sum(fc(dist(i, j)) for j in range(n) if j != i)
    g2 = []
    for eta, mu in zip(w.g2_eta, w.g2_mu):
        g2.append(sum(numbers[j] * fc(dist(i, j)) * math.exp(-eta * (dist(i, j) - mu) ** 2)
                      for j in range(n) if j != i))
    g4 = []
    for eta, mu in zip(w.g4_eta, w.g4_mu):
        for lam in w.lambdas:
            for zeta in w.zetas:
                total = 0.0
                for j in range(n):
                    if j == i:
                        continue
                    rij = dist(i, j)
                    for k in range(n):
                        if k in (i, j):
                            continue
                        rik, rjk = dist(i, k), dist(j, k)
                        cos = sum((pos[j][c] - pos[i][c]) * (pos[k][c] - pos[i][c]) for c in range(3)) / (rij * rik)
                        total += (numbers[j] * numbers[k] * (1.0 + lam * cos) ** zeta
                                  * fc(rij) * fc(rik) * fc(rjk)
                                  * math.exp(-eta * (rij - mu) ** 2) * math.exp(-eta * (rik - mu) ** 2)
                                  * math.exp(-eta * (rjk - mu) ** 2))
                g4.append(2.0 ** (1.0 - zeta) * total)
    return np.array([g1, *g2, *g4])
