"""The simulation engine: FEFF10 site calculations on a Dask cluster, resumable and atomic.

One Dask task per symmetry-inequivalent absorbing site (:func:`xasml.simulate.feff.run_site`).
By default a :class:`distributed.LocalCluster` with one single-threaded worker process per core
runs them; ``scheduler=`` submits to any running Dask scheduler instead (for example one started
by ``dask-jobqueue`` on a SLURM or PBS cluster, see ``docs/simulate.md``). Results stream back as
sites finish; the engine keeps, in the output folder:

* ``FEFF10/<key>/{structure.cif,material.json}`` and ``FEFF-XANES/<index:03d>_<El>/{feff.inp,xmu.dat}``;
* ``sites.csv`` - every finished site of every run: status, wall and core seconds, host;
* ``failures.csv`` - failed sites with FEFF's message (a failure never stops a run);
* ``summary.json`` - this run's and the folder's totals, settings and package versions.

Every file is written to a temporary name and renamed, and FEFF runs in ``<out>/.scratch``, so
an interruption leaves no half-written file; rerunning the same command skips every site whose
``xmu.dat`` exists (and, unless ``retry_failed``, every site that failed before) and finishes
the job.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from xasml.errors import DataError, MissingExtraError
from xasml.simulate.feff import (FeffSettings, expected_cost, feff_input_text, inequivalent_sites, run_site,
                                 site_dirname)
from xasml.simulate.sources import StructureRecord
from xasml.utils import atomic_write_json, atomic_write_text

SITE_LOG_COLUMNS = ("key", "element", "absorbing_index", "status", "wall_s", "cpu_s", "host", "finished_at",
                    "message")
FEFF_DIR = "FEFF10"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


def versions() -> dict[str, str]:
    """Versions of the packages a simulation depends on (recorded in ``summary.json``)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("xasml", "feff10-rs", "pymatgen", "dask", "distributed", "larixite"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


@dataclass
class Plan:
    """What a run will do: the site tasks to submit and what is skipped.

    Attributes
    ----------
    tasks : list of dict
        One :func:`run_site` task per site to compute.
    skipped_done : int
        Sites whose ``xmu.dat`` already exists.
    skipped_failed : int
        Sites that failed in an earlier run (not retried unless asked).
    rejected : list of dict
        Structures not simulated (``key``, ``reason``): disordered, too many sites, element absent.
    structures : int
        Structures with at least one site in the layout.
    """

    tasks: list
    skipped_done: int
    skipped_failed: int
    rejected: list
    structures: int


def _material_json(record: StructureRecord, key: str, sites, settings: FeffSettings, elements) -> dict[str, Any]:
    import feff10

    meta = {"key": key, **record.meta}
    if isinstance(elements, (list, tuple)) and len(elements) == 1:
        meta["element"] = elements[0]
    meta["sites"] = [s.to_dict() for s in sites]
    meta["settings"] = settings.to_dict()
    meta["feff"] = f"FEFF10 via feff10-rs {feff10.__version__}, pymatgen MPXANESSet"
    return meta


def plan(records: Iterable[StructureRecord], out: str | Path, elements: Sequence[str] | str = "all",
         settings: FeffSettings | None = None, timeout: float | None = None, retry_failed: bool = False,
         max_sites: int | None = None, symprec: float = 0.01) -> Plan:
    """Write each structure's folder and list the site tasks still to run (all of them at once;
    :func:`simulate` consumes :func:`iter_plan` instead, so FEFF starts with the first structure).

    Parameters and errors: see :func:`iter_plan`.
    """
    p = Plan([], 0, 0, [], 0)
    p.tasks = list(iter_plan(records, out, elements, settings, timeout, retry_failed, max_sites, symprec, p))
    return p


def iter_plan(records: Iterable[StructureRecord], out: str | Path, elements: Sequence[str] | str = "all",
              settings: FeffSettings | None = None, timeout: float | None = None, retry_failed: bool = False,
              max_sites: int | None = None, symprec: float = 0.01, counts: Plan | None = None):
    """Write each structure's folder and yield the site tasks still to run, structure by structure.

    Parameters
    ----------
    records : iterable of StructureRecord
        Structures to simulate.
    out : str or Path
        Output folder (the layout described in the module docstring).
    elements : sequence of str or "all"
        Absorbing elements. With exactly one element the folder key gets ``-<El>`` appended, as in
        ``feff10-local-v0`` (``amcsd-143-Fe``); otherwise it is the record's key, as in
        ``feff10-topology-v0``.
    settings : FeffSettings
        FEFF settings (default: preset ``v0``).
    timeout : float, optional
        Time limit of each FEFF stage of a site, seconds.
    retry_failed : bool
        Also run sites listed in ``failures.csv``.
    max_sites : int, optional
        Skip structures with more inequivalent absorbing sites than this (recorded in ``rejected``).
    symprec : float
        Symmetry tolerance, Å.

    counts : Plan, optional
        Filled as the plan proceeds: skipped sites, rejected structures, structures.

    Yields
    ------
    dict
        One :func:`xasml.simulate.feff.run_site` task per site to compute.

    Raises
    ------
    DataError
        If an existing ``material.json`` in ``out`` was made with other FEFF settings.
    """
    from pymatgen.io.cif import CifWriter

    try:
        import feff10  # noqa: F401 - checked here so that a missing engine fails before any work
    except ImportError:
        raise MissingExtraError("feff10-rs", "simulate") from None
    settings = settings or FeffSettings.from_preset("v0")
    out = Path(out)
    root = out / FEFF_DIR
    root.mkdir(parents=True, exist_ok=True)
    scratch = out / ".scratch"
    if scratch.exists():  # leftovers of an interrupted run: never part of the layout
        shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    failed_before = {(r["key"], int(r["absorbing_index"])) for r in _read_csv(out / "failures.csv")}
    single = (not isinstance(elements, str)) and len(elements) == 1
    c = counts if counts is not None else Plan([], 0, 0, [], 0)
    rejected = c.rejected
    for rec in records:
        key = f"{rec.key}-{elements[0]}" if single else rec.key
        try:
            sites = inequivalent_sites(rec.structure, elements, symprec=symprec)
        except DataError as exc:
            rejected.append({"key": key, "reason": str(exc)})
            continue
        if not sites:
            rejected.append({"key": key, "reason": "no site of the requested element(s)"})
            continue
        if max_sites is not None and len(sites) > max_sites:
            rejected.append({"key": key, "reason": f"{len(sites)} inequivalent sites > max_sites={max_sites}"})
            continue
        folder = root / key
        mj = folder / "material.json"
        if mj.exists():
            for d in (folder / "FEFF-XANES").glob("*"):  # empty site folders of a killed run (older versions)
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
            old = json.loads(mj.read_text())
            if old.get("settings") != settings.to_dict():
                raise DataError(f"{mj}: made with other FEFF settings ({old.get('settings')}); "
                                f"use another --out for settings {settings.to_dict()}")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                atomic_write_text(folder / "structure.cif", str(CifWriter(rec.structure)))
            atomic_write_json(mj, _material_json(rec, key, sites, settings, elements))
        c.structures += 1
        for site in sites:
            site_dir = folder / "FEFF-XANES" / site_dirname(site)
            if (site_dir / "xmu.dat").exists():
                c.skipped_done += 1
                continue
            if (key, site.absorbing_index) in failed_before and not retry_failed:
                c.skipped_failed += 1
                continue
            yield {"key": key, "element": site.element, "absorbing_index": site.absorbing_index,
                   "site_dir": str(site_dir), "scratch_dir": str(scratch), "timeout": timeout,
                   "feff_inp": feff_input_text(rec.structure, site.absorbing_index, settings)}


class _Ledger:
    """The run's bookkeeping: ``sites.csv``, ``failures.csv`` and ``summary.json``, kept current."""

    def __init__(self, out: Path, settings: FeffSettings, n_tasks: int, info: dict[str, Any],
                 counts: Plan | None = None):
        self.counts = counts  # the plan's running counts (structures, skipped, rejected)
        self.out = out
        self.log = _read_csv(out / "sites.csv")
        self.failures = {(r["key"], r["absorbing_index"]): r for r in _read_csv(out / "failures.csv")}
        self.settings = settings
        self.n_tasks = n_tasks
        self.info = info
        self.done = self.failed = 0
        self.cpu = 0.0
        self.t0 = time.perf_counter()
        self.t_compute = None  # when the first task was submitted (the cluster is up)
        # spectra in the folder before this run; the run adds one per site done (it owns the folder)
        self.n_xmu_before = sum(1 for _ in (out / FEFF_DIR).glob("*/FEFF-XANES/*/xmu.dat"))
        self.started = _now()

    def add(self, res: dict[str, Any]) -> None:
        res = {**res, "finished_at": _now()}
        if res["status"] == "skipped":
            return
        self.log.append(res)
        self.cpu += float(res["cpu_s"])
        k = (res["key"], str(res["absorbing_index"]))
        if res["status"] == "done":
            self.done += 1
            self.failures.pop(k, None)
        else:
            self.failed += 1
            self.failures[k] = res
        self.write()

    def summary(self, finished: bool) -> dict[str, Any]:
        now = time.perf_counter()
        wall = now - self.t0
        compute = now - self.t_compute if self.t_compute is not None else 0.0
        by_el: dict[str, dict[str, int]] = {}
        for r in self.log:
            d = by_el.setdefault(r["element"], {"done": 0, "failed": 0})
            d["done" if r["status"] == "done" else "failed"] += 1
        # a site that failed and later succeeded counts as done only
        fails_now = {(r["key"], str(r["absorbing_index"])) for r in self.failures.values()}
        n_xmu = self.n_xmu_before + self.done
        return {
            "finished": finished,
            "this_run": {"started": self.started, "sites_submitted": self.n_tasks, "done": self.done,
                         "failed": self.failed, "remaining": self.n_tasks - self.done - self.failed,
                         "core_seconds": round(self.cpu, 1), "wall_seconds": round(wall, 1),
                         "sites_per_hour": round(3600 * self.done / wall, 1) if wall > 0 else None,
                         "compute_wall_seconds": round(compute, 1),
                         "compute_sites_per_hour": round(3600 * self.done / compute, 1) if compute > 0 else None,
                         **self.info, **self._counts()},
            "total": {"structures": sum(1 for _ in (self.out / FEFF_DIR).glob("*/material.json")),
                      "sites_done": n_xmu, "sites_failed": len(fails_now),
                      "core_seconds": round(sum(float(r["cpu_s"]) for r in self.log), 1),
                      "core_hours": round(sum(float(r["cpu_s"]) for r in self.log) / 3600, 3),
                      "attempts_by_element": dict(sorted(by_el.items()))},
            "settings": self.settings.to_dict(),
            "versions": versions(),
        }

    def _counts(self) -> dict[str, Any]:
        c = self.counts
        if c is None:
            return {}
        return {"skipped_existing": c.skipped_done, "skipped_failed_before": c.skipped_failed,
                "structures": c.structures, "rejected": c.rejected}

    def write(self, finished: bool = False) -> None:
        _write_csv(self.out / "sites.csv", self.log, SITE_LOG_COLUMNS)
        _write_csv(self.out / "failures.csv", self.failures.values(),
                   ("key", "element", "absorbing_index", "message", "wall_s", "finished_at"))
        atomic_write_json(self.out / "summary.json", self.summary(finished))


#: the simulate bar: "FEFF sites:  40%|####      | 4/10 [00:31<00:47, done 3, failed 1, core-s 52]"
PROGRESS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


def _progress_text(ledger: _Ledger) -> str:
    """The bar's counters: sites done and failed, and FEFF core-seconds since the run started."""
    return f"done {ledger.done}, failed {ledger.failed}, core-s {ledger.cpu:.0f}"


def _client(workers: int | None, scheduler: str | None):
    """A Dask client: on ``scheduler`` if given, else on a new LocalCluster of single-threaded processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MissingExtraError("dask.distributed", "simulate") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as exc:
            raise DataError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=0, silence_logs=40)
    return Client(cluster), cluster


def simulate(records: Iterable[StructureRecord], out: str | Path, elements: Sequence[str] | str = "all",
             settings: FeffSettings | None = None, workers: int | None = None, scheduler: str | None = None,
             timeout: float | None = 3600.0, retry_failed: bool = False, max_sites: int | None = None,
             show_progress: bool | None = None) -> dict[str, Any]:
    """Simulate the K-edge XANES of every inequivalent absorbing site of ``records`` with FEFF10.

    Parameters
    ----------
    records : iterable of StructureRecord
        Structures (see :mod:`xasml.simulate.sources`).
    out : str or Path
        Output folder; rerunning into the same folder resumes.
    elements : sequence of str or "all"
        Absorbing elements (see :func:`plan` for the folder keys).
    settings : FeffSettings, optional
        Default: preset ``v0``.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); ``workers`` is then ignored.
    timeout : float, optional
        Time limit of each FEFF stage of a site, seconds (a site over it is recorded as failed).
    retry_failed : bool
        Rerun sites recorded in ``failures.csv``.
    max_sites : int, optional
        Skip structures with more inequivalent absorbing sites.
    show_progress : bool, optional
        Progress on stderr: a tqdm bar of sites finished out of those submitted, with the sites
        done and failed and the core-seconds (CPU time of FEFF) since the start of this run
        (default ``None``: the bar, plus one line per finished site when stderr is not a terminal,
        for log files); ``False``: nothing.

    Returns
    -------
    dict
        The content of ``summary.json`` (also ``rejected`` structures and skipped counts).
    """
    settings = settings or FeffSettings.from_preset("v0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out):
        return _simulate(records, out, elements, settings, workers, scheduler, timeout, retry_failed, max_sites,
                         show_progress)


@contextlib.contextmanager
def _folder_lock(out: Path):
    """Hold ``<out>/.lock`` (an flock, released when the process ends): one run per output folder."""
    import fcntl

    fh = open(out / ".lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(f"{out}: another 'xasml simulate' run is writing this folder; wait for it or use "
                            "another --out") from None
        yield
    finally:
        fh.close()


def _simulate(records, out: Path, elements, settings: FeffSettings, workers, scheduler, timeout, retry_failed,
              max_sites, show_progress) -> dict[str, Any]:
    """Plan structure by structure and submit each site at once, so FEFF starts with the first
    structure and the results stream back while later structures are still being prepared."""
    counts = Plan([], 0, 0, [], 0)
    tasks = iter_plan(records, out, elements, settings, timeout, retry_failed, max_sites, counts=counts)
    info = {"workers": None if scheduler else (workers or os.cpu_count()), "scheduler": scheduler}
    ledger = _Ledger(out, settings, 0, info, counts)
    first = next(tasks, None)
    if first is None:  # nothing to compute: no cluster
        ledger.write(finished=True)
        shutil.rmtree(out / ".scratch", ignore_errors=True)
        return ledger.summary(True)
    ledger.write()
    bar_on = show_progress is not False
    lines = show_progress is None and not sys.stderr.isatty()  # log files also get one line per site
    client, cluster = _client(workers, scheduler)
    finished = False
    previous_term = _term_as_interrupt()
    try:
        from dask.distributed import as_completed
        from tqdm.auto import tqdm

        ledger.t_compute = time.perf_counter()
        pending = as_completed()
        by_key: dict[str, dict] = {}
        bar = tqdm(total=0, desc="FEFF sites", unit="site", disable=not bar_on, file=sys.stderr,
                   dynamic_ncols=True, bar_format=PROGRESS_FORMAT)
        bar.set_postfix_str(_progress_text(ledger), refresh=False)

        def submit(t: dict) -> None:
            key = f"feff-{t['key']}-{t['absorbing_index']}"
            by_key[key] = t
            # costlier sites first (Dask runs higher priorities first among the queued tasks)
            pending.add(client.submit(run_site, t, key=key, pure=False, priority=int(expected_cost(t["feff_inp"]))))
            ledger.n_tasks += 1
            bar.total = ledger.n_tasks
            if not lines:  # a terminal redraws in place; a log file gets the bar when a site finishes
                bar.refresh()

        def collect(fut) -> None:
            t = by_key.pop(fut.key)
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker lost mid-task: record, go on
                res = {**{k: t[k] for k in ("key", "element", "absorbing_index")}, "status": "failed",
                       "message": f"worker error: {type(exc).__name__}: {exc}", "wall_s": 0.0, "cpu_s": 0.0}
            ledger.add(res)
            if lines:
                line = (f"{_now()} {res['status']:6s} {ledger.done + ledger.failed}/{ledger.n_tasks} {res['key']} "
                        f"{res['absorbing_index']:03d}_{res['element']} {float(res['wall_s']):.1f} s "
                        f"{res.get('message', '')[:120]}")
                if bar_on:
                    bar.write(line, file=sys.stderr)
                else:
                    print(line, file=sys.stderr, flush=True)
            bar.set_postfix_str(_progress_text(ledger), refresh=False)
            bar.update(1)

        submit(first)
        for t in tasks:
            submit(t)
            while pending.has_ready():
                collect(next(pending))
        for fut in pending:
            collect(fut)
        bar.close()
        finished = True
    finally:
        ledger.write(finished=finished)
        helpers = _descendants() if cluster is not None else []
        client.close()
        if cluster is not None:
            cluster.close()
        _stop(helpers)
        shutil.rmtree(out / ".scratch", ignore_errors=True)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return ledger.summary(finished)


def _term_as_interrupt():
    """Make SIGTERM (``kill PID``) interrupt the run like Ctrl-C, so the ledger is written and the local
    cluster and its FEFF processes are stopped; returns the previous handler (None off the main thread)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _descendants() -> list:
    """This process's child processes, recursively (the local cluster's workers and the FEFF stage
    processes that feff10-rs starts under them)."""
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _stop(procs: list, grace_s: float = 3.0) -> None:
    """Terminate the processes of ``procs`` still alive after the cluster closed (a FEFF stage process
    outlives its killed Dask worker otherwise and runs to the end of its stage), then kill what remains."""
    import psutil

    alive = []
    for p in procs:
        try:
            if p.is_running():
                p.terminate()
                alive.append(p)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=grace_s)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
