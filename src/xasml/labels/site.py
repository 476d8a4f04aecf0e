"""Site labels from crystal structures: coordination environment, coordination number, oxidation state.

The coordination environment of an absorbing site is the ChemEnv polyhedron (Waroquiers et al.,
Acta Cryst. B 76, 683 (2020); pymatgen ``analysis.chemenv``) with the lowest continuous symmetry
measure (CSM, Pinsky & Avnir, Inorg. Chem. 37, 5575 (1998)) among the neighbour sets within
``distance_cutoff`` x the nearest-neighbour distance, as in Carbone et al., Phys. Rev. Materials 3,
033604 (2019), §II.B (cutoff 1.2). Labels are ChemEnv symbols such as ``"T:4"`` (tetrahedron),
``"S:4"`` (square plane), ``"S:5"`` (square pyramid), ``"O:6"`` (octahedron), ``"L:2"`` (linear).
The coordination number is the number of neighbours of that polyhedron.

The oxidation state comes from the bond-valence analysis of pymatgen (``BVAnalyzer``, O'Keeffe &
Brese, J. Am. Chem. Soc. 113, 3226 (1991)). When the analysis fails (metals, intermetallics, odd
charges, a time limit), the oxidation state is ``None`` and ``oxidation_status`` says why
(``"unknown: ..."``). When valences are known, ChemEnv considers only cation-anion bonds, as its
authors recommend; otherwise every neighbour counts (``valence_method = "undefined"``).

Labelling a whole data set goes through :func:`label_sites`: one task per structure (bond
valences and the Voronoi analysis computed once for all absorbing sites of that structure),
optional worker processes, a per-structure time limit, a Parquet cache keyed by
(``material_id``, ``absorbing_index``) and the structure file's hash, so that reruns are instant,
interruptions resume, and a bad structure is recorded (``error``) without stopping the run.
"""

from __future__ import annotations

import functools

import hashlib
import logging
import signal
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it is used: reading this module stays light
    import pandas as pd

from xasml.errors import DataError
from xasml.utils import atomic_path, progress

log = logging.getLogger(__name__)

#: Columns of a label table / cache, in order.
LABEL_COLUMNS = ("material_id", "absorbing_index", "absorbing_element", "environment", "csm",
                 "coordination_number", "ligands", "oxidation_state", "oxidation_status",
                 "valence_method", "structure_sha1", "error", "seconds")


@dataclass
class SiteLabel:
    """The local-structure labels of one absorbing site.

    Attributes
    ----------
    material_id : str
    absorbing_index : int
        0-based index of the site in the structure.
    absorbing_element : str
    environment : str or None
        ChemEnv symbol of the lowest-CSM polyhedron (``"O:6"``), None when labelling failed.
    csm : float
        Its continuous symmetry measure (0 = ideal polyhedron; NaN when unknown).
    coordination_number : int or None
        Number of neighbours of that polyhedron.
    ligands : str
        Neighbour elements, sorted and joined with ``"-"`` (``"O-O-O-O"``); empty when unknown.
    oxidation_state : int or None
        Bond-valence oxidation state of the site; None when the analysis failed.
    oxidation_status : str
        ``"ok"`` or ``"unknown: <reason>"``.
    valence_method : str
        ``"bond-valence"`` (cation-anion neighbours only) or ``"undefined"`` (all neighbours).
    structure_sha1 : str
        SHA-1 of the structure file (cache validation).
    error : str
        Empty, or why the environment could not be determined.
    seconds : float
        Wall time spent on the site's structure divided by its number of labelled sites.
    """

    material_id: str
    absorbing_index: int
    absorbing_element: str
    environment: str | None = None
    csm: float = float("nan")
    coordination_number: int | None = None
    ligands: str = ""
    oxidation_state: int | None = None
    oxidation_status: str = "unknown: not computed"
    valence_method: str = "undefined"
    structure_sha1: str = ""
    error: str = ""
    seconds: float = 0.0


class _Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float | None):
    """Raise :class:`_Timeout` after ``seconds`` (main thread on POSIX only; otherwise no limit)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # pragma: no cover - timing dependent
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def oxidation_states(structure, timeout: float | None = 30.0, max_permutations: int = 100000):
    """Bond-valence oxidation states of every site of a structure.

    Parameters
    ----------
    structure : pymatgen.core.Structure
    timeout : float, optional
        Seconds after which the analysis is abandoned (the result is then "unknown").
    max_permutations : int
        Passed to ``BVAnalyzer``; bounds the charge-assignment search.

    Returns
    -------
    (list of int or None, str)
        The valences (one per site) and ``"ok"``, or ``None`` and ``"unknown: <reason>"``.
        A structure of metals only (a foil, an intermetallic) is 0 everywhere, without the analysis.
    """
    from pymatgen.analysis.bond_valence import BVAnalyzer

    if all(el.is_metal for el in structure.composition.elements):  # a metal or intermetallic: neutral sites
        return [0] * len(structure), "ok"
    try:
        with _time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals = BVAnalyzer(max_permutations=max_permutations).get_valences(structure)
        return [int(round(v)) for v in vals], "ok"
    except _Timeout:
        return None, f"unknown: bond-valence analysis exceeded {timeout:g} s"
    except Exception as exc:  # BVAnalyzer raises ValueError for metals and impossible charges
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"unknown: {msg[:120]}"


def label_structure(structure, indices: Sequence[int], material_id: str = "", distance_cutoff: float = 1.2,
                    angle_cutoff: float = 0.3, max_cn: int | None = None, bv_timeout: float | None = 30.0,
                    chemenv_timeout: float | None = 120.0, structure_sha1: str = "") -> list[SiteLabel]:
    """Label the absorbing sites ``indices`` of one structure.

    Parameters
    ----------
    structure : pymatgen.core.Structure
    indices : sequence of int
        0-based indices of the sites to label.
    material_id : str
        Copied into the labels.
    distance_cutoff : float
        Neighbours farther than ``distance_cutoff`` x the nearest-neighbour distance are ignored
        (Carbone et al. 2019, §II.B: 1.2). Used both to limit the Voronoi search (x 1.05) and in
        ``SimplestChemenvStrategy``.
    angle_cutoff : float
        Solid-angle cutoff of ``SimplestChemenvStrategy`` (pymatgen default 0.3).
    max_cn : int, optional
        Largest coordination number considered (speeds up large cells).
    bv_timeout, chemenv_timeout : float, optional
        Time limits in seconds for the bond-valence analysis and for ChemEnv.
    structure_sha1 : str
        Recorded in the labels.

    Returns
    -------
    list of SiteLabel
        One per index, in order. Failures are recorded in ``error`` / ``oxidation_status``; this
        function does not raise for a chemically odd structure.

    Raises
    ------
    DataError
        If an index is out of range.
    """
    from pymatgen.analysis.chemenv.coordination_environments.chemenv_strategies import SimplestChemenvStrategy
    from pymatgen.analysis.chemenv.coordination_environments.coordination_geometry_finder import (
        LocalGeometryFinder)
    from pymatgen.analysis.chemenv.coordination_environments.structure_environments import (
        LightStructureEnvironments)

    t0 = time.time()
    n = len(structure)
    for i in indices:
        if not 0 <= int(i) < n:
            raise DataError(f"{material_id}: site index {i} out of range (structure has {n} sites)")
    labels = [SiteLabel(material_id=material_id, absorbing_index=int(i),
                        absorbing_element=structure[int(i)].specie.symbol, structure_sha1=structure_sha1)
              for i in indices]
    valences, status = oxidation_states(structure, timeout=bv_timeout)
    for lab in labels:
        lab.oxidation_status = status
        if valences is not None:
            lab.oxidation_state = valences[lab.absorbing_index]
            lab.valence_method = "bond-valence"
    # ChemEnv considers cation-anion bonds only when valences are given; an absorber that BV
    # calls an anion (or neutral) is labelled with all neighbours instead.
    use_val = valences is not None and all(valences[i] > 0 for i in indices)
    if valences is not None and not use_val:
        for lab in labels:
            lab.valence_method = "undefined"
    try:
        with _time_limit(chemenv_timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lgf = LocalGeometryFinder()
            lgf.setup_structure(structure)
            se = lgf.compute_structure_environments(
                only_indices=[int(i) for i in indices], maximum_distance_factor=distance_cutoff * 1.05,
                max_cn=max_cn, valences=valences if use_val else "undefined", only_cations=False)
            strategy = SimplestChemenvStrategy(distance_cutoff=distance_cutoff, angle_cutoff=angle_cutoff)
            lse = LightStructureEnvironments.from_structure_environments(strategy=strategy,
                                                                         structure_environments=se)
        for lab in labels:
            envs = lse.coordination_environments[lab.absorbing_index]
            if not envs:
                lab.error = "ChemEnv found no coordination environment"
                continue
            best = min(envs, key=lambda e: e["csm"])
            lab.environment = str(best["ce_symbol"])
            lab.csm = float(best["csm"])
            lab.coordination_number = int(lab.environment.split(":")[1]) if ":" in lab.environment else None
            nbs = lse.neighbors_sets[lab.absorbing_index]
            if nbs:
                lab.ligands = "-".join(sorted(nb["site"].specie.symbol for nb in nbs[0].neighb_sites_and_indices))
    except _Timeout:
        for lab in labels:
            lab.error = f"ChemEnv exceeded {chemenv_timeout:g} s"
    except Exception as exc:  # a bad structure must not stop a data-set labelling run
        msg = f"{type(exc).__name__}: {str(exc).strip()[:160]}"
        for lab in labels:
            lab.error = msg
    dt = (time.time() - t0) / max(len(labels), 1)
    for lab in labels:
        lab.seconds = round(dt, 3)
    return labels


def file_sha1(path: str | Path) -> str:
    """SHA-1 of a file's bytes."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _label_task(task: tuple) -> list[dict]:
    """Worker: read one structure file and label its sites (never raises)."""
    material_id, path, indices, opts = task
    import warnings as _w

    logging.disable(logging.WARNING)
    try:
        from pymatgen.core import Structure

        sha = file_sha1(path)
        with _w.catch_warnings():
            _w.simplefilter("ignore")
            structure = Structure.from_file(str(path))
        labels = label_structure(structure, indices, material_id=material_id, structure_sha1=sha, **opts)
        return [asdict(lab) for lab in labels]
    except Exception as exc:
        msg = f"{path}: {type(exc).__name__}: {str(exc).strip()[:160]}"
        return [asdict(SiteLabel(material_id=material_id, absorbing_index=int(i), absorbing_element="",
                                 error=msg)) for i in indices]


def labels_to_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """A label table (columns :data:`LABEL_COLUMNS`) from label dictionaries."""
    import pandas as pd

    df = pd.DataFrame(list(rows), columns=list(LABEL_COLUMNS))
    df["absorbing_index"] = df["absorbing_index"].astype("int64")
    df["coordination_number"] = pd.array(df["coordination_number"], dtype="Int64")
    df["oxidation_state"] = pd.array(df["oxidation_state"], dtype="Int64")
    df["csm"] = df["csm"].astype(float)
    df["seconds"] = df["seconds"].astype(float)
    for c in ("material_id", "absorbing_element", "ligands", "oxidation_status", "valence_method",
              "structure_sha1", "error"):
        df[c] = df[c].fillna("").astype(str)
    df["environment"] = df["environment"].astype(object).where(df["environment"].notna(), None)
    return df


def read_label_cache(path: str | Path) -> pd.DataFrame:
    """Read a label cache (Parquet or CSV) written by :func:`label_sites`.

    Raises
    ------
    DataError
        If columns are missing.
    """
    import pandas as pd

    path = Path(path)
    df = pd.read_csv(path, dtype={"material_id": str}, keep_default_na=False, na_values=[""]) \
        if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not a site-label table, missing column(s) {', '.join(missing)}")
    return labels_to_frame(df.to_dict("records"))


def write_label_cache(path: str | Path, df: pd.DataFrame) -> Path:
    """Write a label table atomically (Parquet, or CSV when ``path`` ends in ``.csv``)."""
    path = Path(path)
    df = df.sort_values(["material_id", "absorbing_index"]).reset_index(drop=True)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path


@dataclass
class LabelOptions:
    """Options of site labelling (see :func:`label_structure`)."""

    distance_cutoff: float = 1.2
    angle_cutoff: float = 0.3
    max_cn: int | None = None
    bv_timeout: float | None = 30.0
    chemenv_timeout: float | None = 120.0

    def kwargs(self) -> dict:
        return {"distance_cutoff": self.distance_cutoff, "angle_cutoff": self.angle_cutoff,
                "max_cn": self.max_cn, "bv_timeout": self.bv_timeout, "chemenv_timeout": self.chemenv_timeout}


def label_sites(tasks: Sequence[tuple[str, str | Path, Sequence[int]]], cache: str | Path | None = None,
                n_jobs: int = 1, options: LabelOptions | None = None, checkpoint_every: int = 100,
                seed_cache: str | Path | None = None, verify_hash: bool = True,
                checkpoint_seconds: float = 60.0) -> pd.DataFrame:
    """Label many absorbing sites, with a resumable cache.

    Parameters
    ----------
    tasks : sequence of (material_id, structure_path, indices)
        One entry per structure: its id, a structure file pymatgen reads (POSCAR, CIF, ...) and
        the 0-based indices of the absorbing sites to label.
    cache : str or Path, optional
        Parquet (or ``.csv``) label cache. Sites already there with the same structure hash are
        not recomputed; new labels are added and the file rewritten atomically every
        ``checkpoint_every`` structures or ``checkpoint_seconds`` seconds, whichever comes
        first, and when the labelling stops early (Ctrl-C, an error), so an interrupted run
        resumes where it stopped.
    n_jobs : int
        Worker processes (1: in this process).
    options : LabelOptions, optional
    checkpoint_every : int
        Structures between cache writes.
    seed_cache : str or Path, optional
        A read-only label table (e.g. the one shipped in ``xasml/data/local``) consulted before
        computing; entries whose structure hash matches are reused.
    verify_hash : bool
        Compare the structure file's SHA-1 with the cached one (reads every file; cheap).
    checkpoint_seconds : float
        Longest time between cache writes while new labels arrive.

    Returns
    -------
    pandas.DataFrame
        One row per requested site, columns :data:`LABEL_COLUMNS`, in task order. Sites that
        failed have ``environment`` None and a non-empty ``error``.

    Raises
    ------
    KeyboardInterrupt
        Re-raised after the cache is written with every label finished so far (also for any
        other exception).
    """
    options = options or LabelOptions()
    known: dict[tuple[str, int], dict] = {}
    cached: dict[tuple[str, int], dict] = {}
    for src, store in ((seed_cache, known), (cache, cached)):
        if src is not None and Path(src).exists():
            for r in read_label_cache(src).to_dict("records"):
                store[(str(r["material_id"]), int(r["absorbing_index"]))] = r
    known.update(cached)
    todo, done_rows = [], {}
    for mid, path, idx in tasks:
        sha = file_sha1(path) if verify_hash else None
        missing = []
        for i in idx:
            r = known.get((str(mid), int(i)))
            if r is not None and (sha is None or r["structure_sha1"] == sha):
                done_rows[(str(mid), int(i))] = r
            else:
                missing.append(int(i))
        if missing:
            todo.append((str(mid), str(path), missing, options.kwargs()))
    if todo:
        log.info("labelling %d site(s) in %d structure(s) with %d worker(s)", sum(len(t[2]) for t in todo),
                 len(todo), n_jobs)

    def checkpoint():
        if cache is not None:  # the cache keeps its own earlier entries and every site of this call
            merged = dict(cached)
            merged.update(done_rows)
            write_label_cache(cache, labels_to_frame(merged.values()))

    n_done = 0
    last = {"t": time.monotonic(), "n": 0}

    def finished(rows) -> None:
        nonlocal n_done
        for r in rows:
            done_rows[(r["material_id"], int(r["absorbing_index"]))] = r
        n_done += 1
        if n_done % checkpoint_every == 0 or time.monotonic() - last["t"] >= checkpoint_seconds:
            checkpoint()
            last.update(t=time.monotonic(), n=n_done)

    try:
        if todo and n_jobs > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            ex = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx)
            try:
                futures = [ex.submit(_label_task, t) for t in todo]
                for fut in progress(as_completed(futures), desc="site labels", total=len(futures)):
                    finished(fut.result())
            finally:  # on Ctrl-C do not wait for the queued structures
                ex.shutdown(wait=True, cancel_futures=True)
        else:
            for t in progress(todo, desc="site labels", total=len(todo)):
                finished(_label_task(t))
    except BaseException:  # Ctrl-C or a failure: keep every label computed so far, then stop
        if n_done > last["n"]:
            checkpoint()
        raise
    checkpoint()
    rows = [done_rows[(str(mid), int(i))] for mid, _, idx in tasks for i in idx]
    return labels_to_frame(rows)


def summarize_labels(df: pd.DataFrame) -> dict:
    """Counts for a label table: sites, failures, environments, oxidation states, time per site."""
    ok = df["environment"].notna()
    return {
        "n_sites": int(len(df)),
        "n_environment_failed": int((~ok).sum()),
        "n_oxidation_unknown": int(df["oxidation_state"].isna().sum()),
        "environments": {str(k): int(v) for k, v in df.loc[ok, "environment"].value_counts().items()},
        "oxidation_states": {str(k): int(v) for k, v in df["oxidation_state"].dropna().value_counts().sort_index().items()},
        "mean_seconds_per_site": float(np.nanmean(df["seconds"])) if len(df) else 0.0,
        "errors": df.loc[df["error"] != "", ["material_id", "absorbing_index", "error"]].head(50).to_dict("records"),
    }


@functools.lru_cache(maxsize=1)
def _coordination_geometries():
    """pymatgen's table of coordination geometries (built once)."""
    from pymatgen.analysis.chemenv.coordination_environments.coordination_geometries import (
        AllCoordinationGeometries)

    return AllCoordinationGeometries()


@functools.lru_cache(maxsize=1)
def _environment_names() -> dict[str, str]:
    """ChemEnv symbol -> name, read from pymatgen's own coordination-geometry files (JSON).

    The files that :class:`AllCoordinationGeometries` reads (``coordination_geometries_files``,
    listed in ``allcg.txt``), found without importing pymatgen's chemenv modules: importing them
    takes about a second (measured with ``python -X importtime``, ``benchmarks/shell_speed.py``),
    most of a ``xasml local predict --task coordination`` on one file, while the JSON files read
    in milliseconds. Empty when the files are not where pymatgen keeps them (then
    :func:`environment_name` asks pymatgen's class). ``tests/test_speed.py`` checks both agree.
    """
    import importlib.util
    import json

    spec = importlib.util.find_spec("pymatgen.analysis")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        root = Path(folder) / "chemenv" / "coordination_environments"
        listing = root / "coordination_geometries_files" / "allcg.txt"
        if not listing.is_file():
            continue
        names: dict[str, str] = {}
        try:
            for line in listing.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    d = json.loads((root / line.strip()).read_text(encoding="utf-8"))
                    names.setdefault(str(d["mp_symbol"]), str(d["name"]))
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return names
    return {}


def environment_name(symbol: str | None) -> str | None:
    """The name of a ChemEnv coordination environment symbol (``"S:4"`` -> ``"Square plane"``).

    Names come from pymatgen's table of coordination geometries (Waroquiers et al., Chem. Mater.
    29, 8346 (2017)), read from its files (:func:`_environment_names`) or, for symbols not in
    them, from its :class:`AllCoordinationGeometries`. Returns None for None, and the symbol
    itself when pymatgen does not know it.
    """
    if symbol is None:
        return None
    name = _environment_names().get(str(symbol))
    if name is not None:
        return name
    try:
        return str(_coordination_geometries().get_geometry_from_mp_symbol(str(symbol)).name)
    except Exception:  # noqa: BLE001 - unknown symbols (e.g. "other") keep their own text
        return str(symbol)
