"""FEFF10 K-edge XANES of crystal sites: settings presets, site selection, input, one-site runs.

The physics is FEFF 10 (Rehr *et al.*) through the PyPI package ``feff10-rs`` (module ``feff10``),
and every ``feff.inp`` is written by pymatgen's :class:`~pymatgen.io.feff.sets.MPXANESSet`
(the Materials Project XANES input set), with a preset's tag overrides; xasml writes no FEFF
input of its own. One task is one symmetry-inequivalent absorbing site; it is run in a scratch
folder and only ``feff.inp`` and ``xmu.dat`` are moved, each by an atomic rename, into the
site folder of the output layout::

    <out>/FEFF10/<key>/structure.cif
    <out>/FEFF10/<key>/material.json          key, formula, sg, sites[element, absorbing_index,
                                               multiplicity], settings, feff version, source
    <out>/FEFF10/<key>/FEFF-XANES/<index:03d>_<El>/{feff.inp,xmu.dat}

which is the layout of the shared ``feff10-topology-v0`` / ``feff10-local-v0`` sets, so every
reader and dataset builder of xasml takes it.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from xasml.errors import DataError

#: glibc allocator setting under which feff10-rs runs 1.5-3x faster with identical spectra
#: (measured when the shared FEFF10 sets were made; see ``../shared/data/README.md``).
GLIBC_TUNABLES = ("glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:"
                  "glibc.malloc.top_pad=268435456")

#: Settings presets. ``tags`` override MPXANESSet's defaults; ``delete`` removes cards;
#: ``radius`` is the cluster radius in Å.
PRESETS: dict[str, dict[str, Any]] = {
    # exactly the settings of the shared feff10-topology-v0 and feff10-local-v0 sets
    "v0": {"radius": 6.0, "edge": "K",
           "tags": {"SCF": "3.0 0 30 0.2 1", "FMS": "5.0 0", "XANES": "3.7 .07 .3", "COREHOLE": "FSR"},
           "delete": ["LDOS"]},
    # the Materials Project XANES settings: MPXANESSet as pymatgen defines it
    "mp": {"radius": 10.0, "edge": "K", "tags": {}, "delete": []},
}


@dataclass(frozen=True)
class FeffSettings:
    """The FEFF settings of a simulation, recorded in every output.

    Parameters
    ----------
    preset : str
        Name of the preset the settings start from (``"v0"``, ``"mp"``).
    radius : float
        Cluster radius, Å (MPXANESSet ``radius``).
    edge : str
        Absorption edge (``"K"``; MPXANESSet ``edge``).
    tags : dict
        FEFF cards that override MPXANESSet's defaults, e.g. ``{"FMS": "5.0 0"}``.
    delete : tuple of str
        Cards removed from MPXANESSet's defaults (e.g. ``("LDOS",)``).
    """

    preset: str = "v0"
    radius: float = 6.0
    edge: str = "K"
    tags: dict = field(default_factory=dict)
    delete: tuple = ()

    @classmethod
    def from_preset(cls, preset: str = "v0", radius: float | None = None,
                    tags: dict[str, str] | None = None, delete: Sequence[str] = ()) -> FeffSettings:
        """Settings of a preset with user overrides.

        Parameters
        ----------
        preset : {"v0", "mp"}
            Starting point.
        radius : float, optional
            Cluster radius in Å instead of the preset's.
        tags : dict, optional
            FEFF cards to set (``{"SCF": "4.5 0 30 0.2 1"}``); they win over the preset.
        delete : sequence of str
            FEFF cards to remove.

        Raises
        ------
        DataError
            If the preset is unknown or a card name is not a FEFF card name.
        """
        if preset not in PRESETS:
            raise DataError(f"unknown FEFF settings preset {preset!r}; expected one of {', '.join(PRESETS)}")
        p = PRESETS[preset]
        merged = dict(p["tags"])
        for k, v in (tags or {}).items():
            if not str(k).isalnum() or not str(k).isupper():
                raise DataError(f"FEFF card {k!r}: expected an upper-case card name such as SCF or FMS")
            merged[str(k)] = str(v)
        dele = tuple(dict.fromkeys([*p["delete"], *(str(d).upper() for d in delete)]))
        merged = {k: v for k, v in merged.items() if k not in dele}
        r = float(p["radius"] if radius is None else radius)
        if not r > 0:
            raise DataError(f"cluster radius must be > 0 Å, got {r}")
        return cls(preset=preset, radius=r, edge=p["edge"], tags=merged, delete=dele)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (``material.json`` ``settings``, ``summary.json``)."""
        return {"preset": self.preset, "radius": self.radius, "edge": self.edge, **self.tags,
                "delete": list(self.delete)}

    def input_set(self, structure, absorbing_index: int):
        """The pymatgen MPXANESSet for one absorbing site with these settings."""
        from pymatgen.io.feff.sets import MPXANESSet

        uts = dict(self.tags)
        if self.delete:
            uts["_del"] = list(self.delete)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MPXANESSet(absorbing_index, structure, edge=self.edge, radius=self.radius,
                              user_tag_settings=uts)


def feff_input_text(structure, absorbing_index: int, settings: FeffSettings) -> str:
    """The ``feff.inp`` text of one site, written by pymatgen's MPXANESSet.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        Ordered crystal structure.
    absorbing_index : int
        0-based index of the absorbing site in ``structure``.
    settings : FeffSettings

    Returns
    -------
    str
    """
    with tempfile.TemporaryDirectory(prefix="xasml-inp-") as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings.input_set(structure, absorbing_index).write_input(d)
        return (Path(d) / "feff.inp").read_text()


@dataclass(frozen=True)
class SiteInfo:
    """One symmetry-inequivalent absorbing site.

    Attributes
    ----------
    element : str
        Absorbing element symbol.
    absorbing_index : int
        0-based index of the representative site (the lowest index of its orbit).
    multiplicity : int
        Number of equivalent sites in the structure.
    """

    element: str
    absorbing_index: int
    multiplicity: int

    def to_dict(self) -> dict[str, Any]:
        """``material.json`` entry."""
        return {"element": self.element, "absorbing_index": self.absorbing_index, "multiplicity": self.multiplicity}


def inequivalent_sites(structure, elements: Sequence[str] | str = "all", symprec: float = 0.01,
                       exclude: Sequence[str] = ("H",)) -> list[SiteInfo]:
    """Symmetry-inequivalent sites of the absorbing element(s), with multiplicities.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        Ordered structure.
    elements : sequence of str or "all"
        Absorbing elements (those present are taken); ``"all"`` takes every element except
        those in ``exclude``.
    symprec : float
        Symmetry tolerance in Å (spglib via pymatgen's SpacegroupAnalyzer).
    exclude : sequence of str
        Elements never taken with ``"all"`` (H has no useful K edge in FEFF).

    Returns
    -------
    list of SiteInfo
        Sorted by absorbing index; the representative of each orbit is its lowest index.

    Raises
    ------
    DataError
        If the structure is disordered or none of the requested elements is in it.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if not structure.is_ordered:
        raise DataError("disordered structure (partial occupancies): FEFF needs one element per site")
    present = {sp.symbol for sp in structure.composition.elements}
    if isinstance(elements, str):
        wanted = present - set(exclude) if elements.lower() == "all" else {elements}
    else:
        wanted = set(elements)
    if not wanted & present:
        raise DataError(f"absorbing element(s) {', '.join(sorted(wanted))} not in the structure "
                        f"({structure.composition.reduced_formula})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sym = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetrized_structure()
    out = []
    for group in sym.equivalent_indices:
        el = structure[group[0]].specie.symbol
        if el in wanted:
            out.append(SiteInfo(el, int(min(group)), len(group)))
    return sorted(out, key=lambda s: s.absorbing_index)


def site_dirname(site: SiteInfo | dict) -> str:
    """Site folder name ``<index:03d>_<El>`` of the FEFF layout."""
    if isinstance(site, dict):
        return f"{int(site['absorbing_index']):03d}_{site['element']}"
    return f"{site.absorbing_index:03d}_{site.element}"


def _children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


def _log_tail(path: Path, n: int = 3) -> str:
    """The last ``n`` non-empty lines of a FEFF log, joined (for failures.csv)."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    lines = [ln for ln in lines if not ln.startswith(("Image ", "_feff10", "libc.so", "forrtl"))] or lines
    return " / ".join(lines[-n:])[:300]


def run_site(task: dict[str, Any]) -> dict[str, Any]:
    """Run FEFF10 for one site; the unit of work the simulation engine sends to a worker.

    The ``feff.inp`` text is run in a scratch folder outside the layout; on success
    ``feff.inp`` and then ``xmu.dat`` are renamed into the site folder (so an ``xmu.dat`` that
    exists is always complete), and the scratch folder is removed whatever happens. The glibc
    allocator setting :data:`GLIBC_TUNABLES` is put in the environment of the FEFF processes.

    Parameters
    ----------
    task : dict
        ``key``, ``element``, ``absorbing_index``, ``site_dir`` (the output folder of the site),
        ``scratch_dir`` (where FEFF runs; on the same file system as ``site_dir``, outside the
        layout), ``feff_inp`` (input text), ``timeout`` (seconds per FEFF stage, or None).

    Returns
    -------
    dict
        The task's ``key``, ``element``, ``absorbing_index`` plus ``status`` (``"done"``,
        ``"skipped"`` when ``xmu.dat`` already existed, or ``"failed"``), ``message`` (FEFF's
        message on failure), ``wall_s`` and ``cpu_s`` (core-seconds of this process and its FEFF
        child processes), ``host`` and ``pid``. Never raises for a FEFF failure.
    """
    import socket

    site_dir = Path(task["site_dir"])
    out = {k: task[k] for k in ("key", "element", "absorbing_index")}
    out.update(host=socket.gethostname(), pid=os.getpid(), wall_s=0.0, cpu_s=0.0, message="")
    if (site_dir / "xmu.dat").exists():
        return {**out, "status": "skipped"}
    os.environ["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    t0, c0 = time.perf_counter(), _children_cpu_seconds()
    scratch = Path(task.get("scratch_dir") or site_dir.parent.parent.parent.parent / ".scratch")
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{task['key']}-{task['absorbing_index']:03d}-", dir=scratch))
    try:
        import feff10

        (work / "feff.inp").write_text(task["feff_inp"])
        inp = feff10.FeffInput.from_file(str(work / "feff.inp"))
        cfg = feff10.FeffConfig(str(work), inp, stage_timeout=task.get("timeout"))
        # FEFF's stage processes print their log and Fortran run-time errors on file descriptors
        # 1 and 2: send both to a file (its last lines go into failures.csv)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
        with open(work / "feff.log", "wb") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        try:
            feff10.FeffPipeline(cfg).run()
        finally:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)
        xmu = work / "xmu.dat"
        if not xmu.exists() or xmu.stat().st_size == 0:
            raise RuntimeError("FEFF finished without writing xmu.dat")
        from xasml.io.feff import read_feff_xmu

        read_feff_xmu(xmu, absorbing_element=task["element"])  # a complete, valid spectrum or an error
        site_dir.mkdir(parents=True, exist_ok=True)  # only now: a killed run leaves no empty site folder
        os.replace(work / "feff.inp", site_dir / "feff.inp")
        os.replace(xmu, site_dir / "xmu.dat")
        status, message = "done", ""
    except Exception as exc:  # noqa: BLE001 - any FEFF/IO failure is recorded, never fatal
        tail = _log_tail(work / "feff.log")
        status = "failed"
        message = (f"FEFF: {tail} | " if tail else "") + f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for d in (site_dir, site_dir.parent):  # a failed site leaves no empty folder in the layout
            try:
                d.rmdir()
            except OSError:
                break
    return {**out, "status": status, "message": message, "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(_children_cpu_seconds() - c0, 3)}


def expected_cost(feff_inp: str) -> float:
    """A relative cost estimate of a site from its ``feff.inp``: unique potentials x cluster atoms.

    FEFF's time grows with the number of unique potentials (self-consistency, phase shifts) and the
    size of the cluster (full multiple scattering). The engine gives costlier sites a higher Dask
    priority, so long sites start first and two workers are not left waiting for one long last
    site (longest-processing-time-first scheduling).
    """
    section, n_pot, n_atoms = None, 0, 0
    for line in feff_inp.splitlines():
        word = line.strip().split(None, 1)[0].upper() if line.strip() else ""
        if word in ("POTENTIALS", "ATOMS"):
            section = word
            continue
        if word and word[0].isalpha():  # any other card ends the section
            section = None
            continue
        if section and word and (word[0].isdigit() or word[0] == "-"):
            if section == "POTENTIALS":
                n_pot += 1
            else:
                n_atoms += 1
    return float(max(n_pot, 1) * max(n_atoms, 1))
