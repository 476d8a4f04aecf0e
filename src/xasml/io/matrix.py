"""Reader for spectrum-matrix files: one row of energies, then one row per measured spectrum.

The layout is that of the combinatorial zinc titanate film of the mcr_const project
(AI-multimodal/mcr_const, BSD-3-Clause; the Lu-group perspective's case study, §II.B)::

    0        E_1      E_2      ...  E_K          <- row 0: a placeholder, then the energies (eV)
    f_1      mu_1,1   mu_1,2   ...  mu_1,K       <- rows 1..m: a label value (f_Ti), then the absorption
    ...

whitespace- (or comma-) separated numbers, no header. One file may hold several edges side by
side (the film: 315 Ti K-edge columns, 4940.9-5060.6 eV, then 556 Zn K-edge columns,
9459.7-10321.1 eV): the energies are cut into blocks wherever they stop increasing or jump by
more than ``block_gap`` eV, and the block holding the tabulated edge energy of the requested
element and edge (xraydb) is returned.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from xasml.errors import SpectrumError
from xasml.spectrum import Spectrum, normalize_element
from xasml.utils import is_number

__all__ = ["energy_blocks", "read_spectrum_matrix"]


def energy_blocks(energy: np.ndarray, block_gap: float = 200.0) -> list[tuple[int, int]]:
    """Index ranges ``[a, b)`` of the increasing runs of ``energy`` separated by gaps.

    Parameters
    ----------
    energy : ndarray, shape (K,)
        Energies (eV) of the columns, in file order.
    block_gap : float
        A step larger than this (eV), or any step that does not increase, starts a new block.

    Returns
    -------
    list of (int, int)
    """
    step = np.diff(np.asarray(energy, dtype=float))
    cuts = np.flatnonzero((step <= 0) | (step > block_gap)) + 1
    edges = [0, *cuts.tolist(), len(energy)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def read_spectrum_matrix(path: str | Path, absorbing_element: str, edge: str = "K", label_name: str = "label",
                         block_gap: float = 200.0) -> list[Spectrum]:
    """Read the spectra of one element and edge from a spectrum-matrix file (layout: module docstring).

    Parameters
    ----------
    path : str or Path
        The file.
    absorbing_element, edge : str
        Which block of columns to return: the one whose energy range holds the tabulated edge
        energy (xraydb; e.g. Ti K 4966 eV), or, when none does, the block whose start is
        closest above it within 200 eV.
    label_name : str
        Name under which column 0 of each row goes into ``Spectrum.metadata`` (``"f_Ti"`` for
        the film).
    block_gap : float
        See :func:`energy_blocks`.

    Returns
    -------
    list of Spectrum
        One per data row, in file order: ``energy`` in eV, ``mu`` as stored (arbitrary units),
        ``material_id`` ``"<file stem>#<row>"`` (1-based data row), ``metadata``
        ``{label_name: value, "row": row}``.

    Raises
    ------
    SpectrumError
        Naming the file (and line): unreadable numbers, rows of different lengths, fewer than 2
        rows, non-finite energies or absorption, or no block of columns at the element's edge.
    """
    from xasml.edges import edge_energy

    src = str(path)
    element = normalize_element(absorbing_element, source=src)
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        raise SpectrumError("file not found", source=src) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SpectrumError(f"cannot read: {exc.strerror}", source=src) from None
    rows, lines = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith(("#", "%", "!")):
            continue
        try:
            rows.append([float(t) for t in s.replace(",", " ").split()])
        except ValueError:
            bad = next(t for t in s.replace(",", " ").split() if not is_number(t))
            raise SpectrumError(f"not a number: {bad[:30]!r}; expected a matrix of numbers (row 0 the energies)",
                                source=src, line=i) from None
        lines.append(i)
    if len(rows) < 2:
        raise SpectrumError(f"{len(rows)} row(s) of numbers; expected a row of energies and at least one spectrum",
                            source=src)
    width = len(rows[0])
    for r, ln in zip(rows, lines):
        if len(r) != width:
            raise SpectrumError(f"{len(r)} numbers on this row but {width} on the energy row", source=src, line=ln)
    data = np.asarray(rows, dtype=float)
    energy_all = data[0, 1:]
    if not np.isfinite(energy_all).all():
        raise SpectrumError("non-finite energy on the energy row", source=src, line=lines[0], field="energy")
    e_edge = edge_energy(element, edge)
    blocks = energy_blocks(energy_all, block_gap)
    inside = [(a, b) for a, b in blocks if energy_all[a] <= e_edge <= energy_all[b - 1]]
    if not inside:
        inside = [(a, b) for a, b in blocks if 0 <= energy_all[a] - e_edge <= 200.0]
    if not inside:
        ranges = ", ".join(f"{energy_all[a]:.1f}-{energy_all[b - 1]:.1f}" for a, b in blocks)
        raise SpectrumError(f"no block of columns at the {element} {edge} edge ({e_edge:.1f} eV); the file's "
                            f"energy blocks are {ranges} eV", source=src, field="energy")
    a, b = inside[0]
    stem = Path(path).stem
    out = []
    for k in range(1, len(data)):
        mu = data[k, 1 + a:1 + b]
        if not np.isfinite(mu).all() or not np.isfinite(data[k, 0]):
            raise SpectrumError("non-finite value in this spectrum", source=src, line=lines[k], field="mu")
        out.append(Spectrum(energy=energy_all[a:b], mu=mu, absorbing_element=element, edge=edge,
                            material_id=f"{stem}#{k}", source=src, kind="mu",
                            metadata={label_name: float(data[k, 0]), "row": k}))
    return out


