"""Compact, lossless Parquet datasets of FEFF simulation folders, and their use by the builders.

``xasml simulate pack`` turns a folder in the FEFF layout (``FEFF10/<key>/structure.cif``,
``material.json``, ``FEFF-XANES/<index>_<El>/{feff.inp,xmu.dat}``) into one Parquet file in the
xasml dataset format (:mod:`xasml.datasets.format`, kind ``"feff-sites"``): one row per site
spectrum with the parsed ``energy``/``mu`` and, losslessly, the structure as CIF text, the
``material.json``, the ``feff.inp`` and the ``xmu.dat`` text (zstd-compressed: a few kB a site).

Every dataset builder reads such a file wherever it reads a FEFF folder: :func:`feff_root`
unpacks it once into a cache folder (``$XASML_CACHE`` or ``~/.cache/xasml``) keyed by the
file's SHA-256 and returns that folder, so the readers see exactly the files the simulation
wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from xasml.errors import DataError
from xasml.utils import cache_dir

KIND = "feff-sites"
TEXT_COLUMNS = ("structure_cif", "material_json", "feff_inp", "xmu_dat")


def _feff_base(folder: Path) -> Path:
    base = folder / "FEFF10" if (folder / "FEFF10").is_dir() else folder
    if not base.is_dir() or not any(base.glob("*/FEFF-XANES/*/xmu.dat")):
        raise DataError(f"{folder}: no FEFF10/<key>/FEFF-XANES/<index>_<El>/xmu.dat files")
    return base


SITE_LABEL_COLUMNS = ("environment", "csm", "coordination_number", "ligands", "oxidation_state",
                      "oxidation_status", "valence_method")


def _topology_labels(frame: pd.DataFrame, labels: str | Path) -> pd.DataFrame:
    """Catalogue labels per compound: columns ``subclass``/``topological``, also put in ``material_json``."""
    from xasml.labels.topology import TopologyLabeler

    lab = TopologyLabeler.from_folder(labels)
    subs, tops, texts = [], [], []
    for text in frame["material_json"]:
        meta = json.loads(text)
        mp = [m for m in str(meta.get("mp_ids") or meta.get("mp_id") or "").split(";") if m]
        r = lab.label(mp_ids=mp, formula=meta.get("reduced_formula") or meta.get("formula"), sg=meta.get("sg"))
        sub = r.subclass if r.status == "labelled" else None
        top = int(r.topological) if r.status == "labelled" else None
        if sub is not None and meta.get("subclass") != sub:
            meta.update(subclass=sub, topological=top, label_sources=";".join(
                f"{k}:{'/'.join(v)}" for k, v in r.by_catalogue.items()))
            text = json.dumps(meta, indent=1)
        subs.append(sub)
        tops.append(top)
        texts.append(text)
    return frame.assign(subclass=subs, topological=pd.array(tops, dtype="Int64"), material_json=texts)


def _site_labels(frame: pd.DataFrame, base: Path, n_jobs: int = 1) -> pd.DataFrame:
    """ChemEnv environment, coordination number and bond-valence oxidation state of every site."""
    from xasml.labels.site import label_sites

    tasks = []
    for mid, g in frame.groupby("material_id", sort=False):
        mdir = base / Path(g["source"].iloc[0]).parts[0]
        tasks.append((str(mid), str(mdir / "structure.cif"), [int(i) for i in g["absorbing_index"]]))
    lab = label_sites(tasks, n_jobs=n_jobs)
    lab = lab[["material_id", "absorbing_index", *SITE_LABEL_COLUMNS]]
    out = frame.merge(lab, on=["material_id", "absorbing_index"], how="left")
    return out


def pack_feff_folder(folder: str | Path, to: str | Path, attribution: str = "",
                     extra_metadata: dict[str, Any] | None = None, topology_labels: str | Path | None = None,
                     site_labels: bool = False, n_jobs: int = 1, complete_only: bool = True) -> dict[str, Any]:
    """Pack a FEFF simulation folder into one Parquet dataset (kind ``"feff-sites"``).

    Parameters
    ----------
    folder : str or Path
        Output folder of ``xasml simulate feff`` (or any folder with ``FEFF10/<key>/...`` or
        ``<key>/FEFF-XANES/...``).
    to : str or Path
        The ``.parquet`` file to write (atomically).
    attribution : str
        Origin and licence of the structures, stored in the file.
    extra_metadata : dict, optional
        More file-level metadata (e.g. the simulation ``summary.json``).
    topology_labels : str or Path, optional
        A catalogue folder (``materiae/``, ``arsenal/``; :class:`xasml.labels.TopologyLabeler`):
        each compound's label goes into columns ``subclass``/``topological`` and into its
        stored ``material.json`` (so the topology builder reads it without catalogues).
    site_labels : bool
        Add the site labels of :func:`xasml.labels.site.label_sites` (ChemEnv environment with
        its CSM, coordination number, ligands, bond-valence oxidation state) as columns.
    n_jobs : int
        Processes for the site labels.
    complete_only : bool
        Skip structures for which not every site listed in ``material.json`` has a spectrum
        (sites still running, or failed): their element averages would be biased. Counted in
        the result as ``incomplete``.

    Returns
    -------
    dict
        ``n_sites``, ``n_structures``, ``by_element`` (sites per absorbing element),
        ``incomplete`` (structures skipped), ``path``.

    Raises
    ------
    DataError
        If the folder holds no site spectra, or a file in it is malformed (names the file).
    """
    from xasml.datasets.format import spectra_to_frame, write_dataset
    from xasml.io.feff import read_feff_compound

    folder = Path(folder)
    base = _feff_base(folder)
    frames, incomplete = [], []
    for mdir in sorted(p for p in base.iterdir() if (p / "FEFF-XANES").is_dir()):
        if not any((mdir / "FEFF-XANES").glob("*/xmu.dat")):
            incomplete.append(mdir.name)  # no site computed yet
            continue
        spectra = read_feff_compound(mdir)
        mj = mdir / "material.json"
        mj_text = mj.read_text() if mj.exists() else json.dumps({"key": mdir.name}, indent=1)
        try:
            meta = json.loads(mj_text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{mj}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
        expected = {(int(x["absorbing_index"]), x["element"]) for x in meta.get("sites", [])}
        have = {(s.absorbing_index, s.absorbing_element) for s in spectra}
        if complete_only and not expected <= have:
            incomplete.append(mdir.name)  # still running or failed sites: an element average would be biased
            continue
        cif = (mdir / "structure.cif").read_text() if (mdir / "structure.cif").exists() else ""
        rows = {c: [] for c in TEXT_COLUMNS}
        for s in spectra:
            sdir = Path(s.source).parent
            rows["structure_cif"].append(cif)
            rows["material_json"].append(mj_text)
            rows["feff_inp"].append((sdir / "feff.inp").read_text() if (sdir / "feff.inp").exists() else "")
            rows["xmu_dat"].append(Path(s.source).read_text())
        spectra = [s.replace(source=str(Path(s.source).relative_to(base))) for s in spectra]
        extra = {"formula": [str(meta.get("reduced_formula") or meta.get("formula") or "")] * len(spectra),
                 "sg": [int(meta["sg"]) if meta.get("sg") is not None else -1] * len(spectra), **rows}
        frames.append(spectra_to_frame(spectra, extra=extra))
    if not frames:
        raise DataError(f"{folder}: no structure with every site computed ({len(incomplete)} incomplete)")
    frame = pd.concat(frames, ignore_index=True)
    if topology_labels is not None:
        frame = _topology_labels(frame, topology_labels)
    if site_labels:
        frame = _site_labels(frame, base, n_jobs=n_jobs)
    by_el = frame["absorbing_element"].value_counts().sort_index()
    md = {"n_sites": int(len(frame)), "n_structures": int(frame["material_id"].nunique()),
          "by_element": {k: int(v) for k, v in by_el.items()}, "incomplete": len(incomplete),
          **(extra_metadata or {})}
    write_dataset(to, frame, kind=KIND, metadata={"pack": md}, attribution=attribution)
    return {**md, "path": str(to)}


def unpack_feff_dataset(path: str | Path, dest: str | Path | None = None) -> Path:
    """Write the FEFF layout stored in a ``"feff-sites"`` Parquet file back to files.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`pack_feff_folder`.
    dest : str or Path, optional
        Folder to create (must not exist). Default: the cache folder
        ``<cache>/feff-sites/<sha256 of the file>``, reused when already there.

    Returns
    -------
    Path
        The folder holding ``FEFF10/<key>/...``.

    Raises
    ------
    DataError
        If the file is not a ``"feff-sites"`` dataset or ``dest`` exists.
    """
    from xasml.datasets.format import read_dataset

    path = Path(path)
    if dest is None:
        h = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
        dest = cache_dir() / "feff-sites" / h
        if (dest / "FEFF10").is_dir():
            return dest
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest}: already exists; unpack into a new folder")
    frame, _ = read_dataset(path, kind=KIND)
    missing = [c for c in TEXT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} of a packed FEFF dataset")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        for row in frame.itertuples(index=False):
            site = tmp / "FEFF10" / Path(row.source)
            site.parent.mkdir(parents=True, exist_ok=True)
            mdir = site.parent.parent.parent
            if not (mdir / "material.json").exists():
                (mdir / "material.json").write_text(row.material_json)
                if row.structure_cif:
                    (mdir / "structure.cif").write_text(row.structure_cif)
            site.write_text(row.xmu_dat)
            if row.feff_inp:
                (site.parent / "feff.inp").write_text(row.feff_inp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def is_packed(path: str | Path) -> bool:
    """True when ``path`` is a Parquet file of kind ``"feff-sites"``."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file() or p.suffix.lower() != ".parquet":
        return False
    try:
        md = pq.read_schema(p).metadata or {}
    except Exception:  # noqa: BLE001 - not a Parquet file: not packed
        return False
    return json.loads(md.get(b"xasml.kind", b'""')) == KIND


def feff_root(path: str | Path) -> Path:
    """The FEFF folder behind ``path``: a packed ``"feff-sites"`` file is unpacked (cached) first.

    Every builder calls this where it takes a FEFF folder, so packed datasets work everywhere.
    """
    return unpack_feff_dataset(path) if is_packed(path) else Path(path)


def feff_roots(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """:func:`feff_root` of one path or of each of several."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [feff_root(p) for p in paths]
