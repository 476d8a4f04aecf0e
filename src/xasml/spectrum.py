"""The spectrum object shared by every capability, and element averaging.

A :class:`Spectrum` is one absorption spectrum of one absorbing element at one edge: absolute
energies in eV (strictly increasing) and the absorption ``mu`` (arbitrary units, or normalised).
It validates itself on construction so that bad data fails where it enters, with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from xasml.errors import SpectrumError

#: Edges accepted for ``Spectrum.edge`` (IUPAC / xraydb names).
KNOWN_EDGES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5", "N1", "N2", "N3", "N4", "N5",
               "N6", "N7", "O1", "O2", "O3", "O4", "O5", "P1", "P2", "P3")


def _element_symbols() -> frozenset[str]:
    """The 118 element symbols: xraydb's element table (:mod:`xasml.edges`, read without importing
    xraydb or pymatgen, whose ``pymatgen.core`` import costs ~0.1 s of a one-file command); the
    same set as pymatgen's periodic table (``tests/test_speed.py``), which is the fallback."""
    from xasml.edges import _levels

    symbols = frozenset(s for s in _levels()[0] if s)
    if len(symbols) >= 118:
        return symbols
    from pymatgen.core.periodic_table import Element

    return frozenset(e.symbol for e in Element)


_SYMBOLS: frozenset[str] | None = None


def normalize_element(symbol: str, source: str | None = None, field_name: str = "absorbing_element") -> str:
    """Return the canonical symbol of a chemical element (``"cu"`` -> ``"Cu"``).

    Parameters
    ----------
    symbol : str
        Element symbol in any case.
    source : str, optional
        File the symbol came from, used in the error message.
    field_name : str
        Name of the field, used in the error message.

    Raises
    ------
    SpectrumError
        If ``symbol`` is not an element of the periodic table.
    """
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = _element_symbols()
    s = str(symbol).strip()
    s = s[:1].upper() + s[1:].lower()
    if s not in _SYMBOLS:
        raise SpectrumError(f"unknown element {symbol!r}: expected a chemical symbol such as 'Cu'",
                            source=source, field=field_name)
    return s



def check_energy_mu(energy, mu, source: str | None = None, lines=None) -> tuple[np.ndarray, np.ndarray]:
    """The checks every spectrum passes, before any edge search or normalisation: the arrays are
    as long as each other, hold at least 2 finite values each, and the energies strictly increase
    (no repeated energies).

    Readers call it on what they read, before identifying the edge (so that a bad file is named
    in the error, not deep inside the normalisation); :class:`Spectrum` calls it on construction.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies, eV.
    mu : array_like, shape (n,)
        Absorption.
    source : str, optional
        The file, named in the errors.
    lines : array_like of int, shape (n,), optional
        The file line of each point; the errors then name the line.

    Returns
    -------
    (ndarray, ndarray)
        ``energy`` and ``mu`` as 1-D float arrays.

    Raises
    ------
    SpectrumError
        Naming ``source`` (and the line): empty, length mismatch, fewer than 2 points, a NaN or
        infinite value, or energies that repeat or decrease.
    """
    e = np.asarray(energy, dtype=float).ravel()
    m = np.asarray(mu, dtype=float).ravel()

    def line(i: int) -> int | None:
        return int(lines[i]) if lines is not None and 0 <= i < len(lines) else None

    if e.size == 0:
        raise SpectrumError("empty spectrum: no data points", source=source, field="energy")
    if e.size != m.size:
        raise SpectrumError(f"length mismatch: {e.size} energies but {m.size} mu values", source=source, field="mu")
    if e.size < 2:
        raise SpectrumError("a spectrum needs at least 2 points", source=source, field="energy")
    for name, arr in (("energy", e), ("mu", m)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise SpectrumError(f"{bad.size} non-finite value(s) (NaN or inf), first at point {bad[0]}",
                                source=source, line=line(int(bad[0])), field=name)
    step = np.diff(e)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0])
        what = "duplicate" if step[i] == 0 else "decreasing"
        raise SpectrumError(f"energies must be strictly increasing: {what} energy at point {i + 1} "
                            f"({e[i]:.4f} eV then {e[i + 1]:.4f} eV)", source=source, line=line(i + 1), field="energy")
    return e, m


#: a scan with fewer points, or spanning fewer eV, cannot hold an edge with its pre- and post-edge: an error
MIN_POINTS, MIN_SPAN_EV = 10, 15.0
#: a scan with fewer points, or spanning fewer eV, is usable but doubtful: a warning
DOUBTFUL_POINTS, DOUBTFUL_SPAN_EV = 30, 40.0


def check_extent(spectrum) -> list[str]:
    """The one check of a spectrum's extent, applied to every spectrum a command reads
    (:func:`xasml.io.reader.read_spectrum`): enough points over enough energy for an absorption
    edge with some pre- and post-edge.

    Parameters
    ----------
    spectrum : Spectrum
        Any spectrum (energies in eV).

    Returns
    -------
    list of str
        Doubts, each starting with the file: fewer than :data:`DOUBTFUL_POINTS` points or a span
        under :data:`DOUBTFUL_SPAN_EV` eV (normalisation and predictions uncertain). They are also
        appended to ``spectrum.metadata["warnings"]``, where the commands report them.

    Raises
    ------
    SpectrumError
        Naming the file, for fewer than :data:`MIN_POINTS` points or a span under
        :data:`MIN_SPAN_EV` eV: no edge can be told from such a scan.
    """
    e = spectrum.energy
    n, span = int(e.size), float(e[-1] - e[0])
    src = spectrum.source
    if n < MIN_POINTS or span < MIN_SPAN_EV:
        raise SpectrumError(f"the scan has {n} points over {span:.1f} eV: too short for an absorption edge with "
                            f"its pre- and post-edge (at least {MIN_POINTS} points over {MIN_SPAN_EV:.0f} eV "
                            "expected)", source=src, field="energy")
    out = []
    if n < DOUBTFUL_POINTS or span < DOUBTFUL_SPAN_EV:
        out.append(f"{src}: short scan, {n} points over {span:.1f} eV (expected at least {DOUBTFUL_POINTS} points "
                   f"over {DOUBTFUL_SPAN_EV:.0f} eV): the edge step, the normalisation and any prediction are "
                   "uncertain")
        w = spectrum.metadata.setdefault("warnings", [])
        w.extend(m for m in out if m not in w)
    return out


def atomic_number(symbol: str) -> int:
    """Atomic number Z of an element symbol (any case; pymatgen's periodic table).

    Raises
    ------
    SpectrumError
        If ``symbol`` is not an element.
    """
    from pymatgen.core.periodic_table import Element

    return int(Element(normalize_element(symbol, field_name="element")).Z)


def element_symbol(z: int) -> str:
    """Chemical symbol of atomic number ``z`` (1-118; pymatgen's periodic table).

    Raises
    ------
    SpectrumError
        If ``z`` is not the atomic number of an element.
    """
    from pymatgen.core.periodic_table import Element

    try:
        return Element.from_Z(int(z)).symbol
    except (ValueError, KeyError, OverflowError):
        raise SpectrumError(f"atomic number {z!r} is not an element (expected 1-118)", field="Z") from None


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One X-ray absorption spectrum of one absorbing element at one edge.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Absolute photon energies in eV, strictly increasing, finite.
    mu : array_like, shape (n,)
        Absorption coefficient (raw, normalised or standardised; see ``kind``), finite.
    absorbing_element : str
        Chemical symbol of the absorber, e.g. ``"Cu"``.
    edge : str
        Absorption edge, e.g. ``"K"`` or ``"L3"``.
    material_id : str, optional
        Identifier of the material (Materials Project id, AMCSD key, sample name, ...).
    absorbing_index : int, optional
        0-based index of the absorbing site in the material's structure.
    multiplicity : int
        Number of sites equivalent to the absorbing site in the structure (weight in the
        element average). 1 for measured spectra.
    source : str, optional
        File the spectrum was read from; every error message names it.
    kind : str
        ``"mu"`` (raw), ``"norm"`` (edge-step normalised), ``"average"`` (element average) or
        ``"standardized"``; informational.
    metadata : dict
        Anything else (header fields, fitted normalisation parameters, ...).

    Raises
    ------
    SpectrumError
        If arrays differ in length, have fewer than 2 points, contain NaN or inf, if energies
        are not strictly increasing (duplicates included), or if the element or edge is unknown.
    """

    energy: np.ndarray
    mu: np.ndarray
    absorbing_element: str
    edge: str = "K"
    material_id: str | None = None
    absorbing_index: int | None = None
    multiplicity: int = 1
    source: str | None = None
    kind: str = "mu"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        energy, mu = check_energy_mu(self.energy, self.mu, src)
        element = normalize_element(self.absorbing_element, source=src)
        edge = str(self.edge).strip().upper()
        if edge not in KNOWN_EDGES:
            raise SpectrumError(f"unknown edge {self.edge!r}: expected one of K, L1, L2, L3, M1..M5, ...",
                                source=src, field="edge")
        if int(self.multiplicity) < 1:
            raise SpectrumError(f"multiplicity must be >= 1, got {self.multiplicity}", source=src,
                                field="multiplicity")
        energy.setflags(write=False)
        mu.setflags(write=False)
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "absorbing_element", element)
        object.__setattr__(self, "edge", edge)
        object.__setattr__(self, "multiplicity", int(self.multiplicity))
        if self.absorbing_index is not None:
            object.__setattr__(self, "absorbing_index", int(self.absorbing_index))

    def __len__(self) -> int:
        return int(self.energy.size)

    def __repr__(self) -> str:
        return (f"Spectrum({self.absorbing_element} {self.edge}, {len(self)} points, "
                f"{self.energy[0]:.1f}-{self.energy[-1]:.1f} eV, material_id={self.material_id!r}, "
                f"absorbing_index={self.absorbing_index}, multiplicity={self.multiplicity})")

    def replace(self, **changes: Any) -> "Spectrum":
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def interpolate(self, energy: np.ndarray, kind: str = "linear", fill: str | float = "edge") -> "Spectrum":
        """Resample ``mu`` onto new absolute energies.

        Parameters
        ----------
        energy : ndarray, shape (m,)
            New energies in eV, strictly increasing.
        kind : {"linear", "cubic"}
            Linear interpolation, or a cubic spline (scipy ``CubicSpline``, not-a-knot).
        fill : "edge", "extrapolate" or float
            Value outside the measured range: the nearest end value, the interpolant's
            extrapolation, or a constant.

        Returns
        -------
        Spectrum
            Same metadata, new ``energy`` and ``mu``.
        """
        from xasml.preprocess.grid import interpolate_mu

        grid = np.asarray(energy, dtype=float)
        return self.replace(energy=grid, mu=interpolate_mu(self.energy, self.mu, grid, kind=kind, fill=fill))

    def to_pymatgen(self, structure=None):
        """Convert to :class:`pymatgen.analysis.xas.spectrum.XAS` (XANES).

        Parameters
        ----------
        structure : pymatgen.core.Structure, optional
            The material's structure; pymatgen requires one, so a one-atom placeholder of the
            absorbing element is used when none is given.
        """
        from pymatgen.analysis.xas.spectrum import XAS
        from pymatgen.core import Lattice, Structure

        if structure is None:
            structure = Structure(Lattice.cubic(10.0), [self.absorbing_element], [[0, 0, 0]])
        return XAS(self.energy.copy(), self.mu.copy(), structure, self.absorbing_element,
                   edge=self.edge, spectrum_type="XANES",
                   absorbing_index=self.absorbing_index if self.absorbing_index is not None else 0)

    @classmethod
    def from_pymatgen(cls, xas, material_id: str | None = None, multiplicity: int = 1,
                      source: str | None = None) -> "Spectrum":
        """Build a :class:`Spectrum` from a pymatgen ``XAS`` object."""
        return cls(energy=np.asarray(xas.x), mu=np.asarray(xas.y), absorbing_element=str(xas.absorbing_element),
                   edge=xas.edge, material_id=material_id, absorbing_index=xas.absorbing_index,
                   multiplicity=multiplicity, source=source)


def overlap_window(spectra: Sequence[Spectrum]) -> tuple[float, float]:
    """Return the energy range (eV) covered by every spectrum: (max of starts, min of ends).

    Raises
    ------
    SpectrumError
        If the spectra do not overlap.
    """
    lo = max(float(s.energy[0]) for s in spectra)
    hi = min(float(s.energy[-1]) for s in spectra)
    if not hi > lo:
        raise SpectrumError(f"spectra do not overlap in energy ({lo:.2f} eV > {hi:.2f} eV)",
                            source=spectra[0].source)
    return lo, hi


def element_average(spectra: Iterable[Spectrum], energy: np.ndarray | None = None,
                    n_points: int = 200) -> Spectrum:
    """Multiplicity-weighted mean of one element's inequivalent-site spectra.

    This is the per-element spectrum the Materials Project provides and the input of the
    topology indicator (Andrejevic et al., Adv. Mater. 2022, Data Processing): each
    symmetry-inequivalent site spectrum is weighted by the number of equivalent sites. It is the
    same quantity as pymatgen's ``site_weighted_spectrum``, but takes the multiplicities given
    with the data instead of recomputing them from the structure.

    Parameters
    ----------
    spectra : iterable of Spectrum
        Site spectra of one absorbing element and edge in one material.
    energy : ndarray, shape (m,), optional
        Common grid in eV. Default: ``n_points`` evenly spaced over the overlap of all spectra.
    n_points : int
        Number of grid points when ``energy`` is not given.

    Returns
    -------
    Spectrum
        ``kind="average"``, ``multiplicity`` = sum of the site multiplicities,
        ``absorbing_index=None``; ``metadata["sites"]`` lists (absorbing_index, multiplicity).

    Raises
    ------
    SpectrumError
        If the list is empty or mixes elements, edges or materials.
    """
    spectra = list(spectra)
    if not spectra:
        raise SpectrumError("element_average needs at least one spectrum")
    first = spectra[0]
    for s in spectra[1:]:
        if (s.absorbing_element, s.edge) != (first.absorbing_element, first.edge):
            raise SpectrumError(f"cannot average {s.absorbing_element} {s.edge} with "
                                f"{first.absorbing_element} {first.edge}", source=s.source)
        if s.material_id != first.material_id:
            raise SpectrumError(f"cannot average spectra of different materials ({s.material_id!r} and "
                                f"{first.material_id!r})", source=s.source)
    if energy is None:
        lo, hi = overlap_window(spectra)
        energy = np.linspace(lo, hi, n_points)
    energy = np.asarray(energy, dtype=float)
    weights = np.array([s.multiplicity for s in spectra], dtype=float)
    stack = np.stack([s.interpolate(energy).mu for s in spectra])
    mu = weights @ stack / weights.sum()
    return Spectrum(energy=energy, mu=mu, absorbing_element=first.absorbing_element, edge=first.edge,
                    material_id=first.material_id, absorbing_index=None, multiplicity=int(weights.sum()),
                    source=first.source, kind="average",
                    metadata={"sites": [(s.absorbing_index, s.multiplicity) for s in spectra]})
