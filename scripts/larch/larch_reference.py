"""Record xraylarch's answers as test fixtures (run ONCE, in a separate virtual environment that has
xraylarch; larch is not a dependency of xasml).

* ``xasdl``: larch ``pre_edge`` with its defaults on the arrays dumped by ``dump_xasml_arrays.py``
  (e0, edge_step, pre1, pre2, norm1, norm2, nnorm) and larch ``find_e0`` of the reference channel.
* ``athena``: larch ``read_athena`` of every project file: group names, labels, e0, number of
  points, first/last energy and checksums of μ.

Usage::

    /work/larchenv/bin/python scripts/larch/larch_reference.py xasdl /tmp/xasdl.npz tests/data/measure/larch_xasdl.json
    /work/larchenv/bin/python scripts/larch/larch_reference.py athena ../shared/data/experimental/athena-projects \
        tests/data/measure/larch_athena.json

* ``beamline``: larch ``read_ascii`` of every beamline column file (``read_fdmnes`` for FDMNES
  output): the channel names (``array_labels``), ``energy_column``/``energy_units``/
  ``mono_dspace`` where larch's beamline guess sets them, and larch ``pre_edge`` e0 on the μ that
  xasml chose (``dump_beamline_choices.py``), rebuilt from larch's own arrays::

    /work/larchenv/bin/python scripts/larch/larch_reference.py beamline /tmp/beamline_choices.json \
        ../shared/data/experimental/beamline-files tests/data/measure/larch_beamline.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def xasdl(npz: str, out: str) -> None:
    import larch
    from larch import Group
    from larch.xafs import find_e0, pre_edge

    d = np.load(npz)
    rows = {}
    for i, name in enumerate(d["names"]):
        e, m = d[f"e{i}"], d[f"m{i}"]
        g = Group(energy=e.copy(), mu=m.copy())
        pre_edge(g)
        det = g.pre_edge_details
        row = {"e0": float(g.e0), "edge_step": float(g.edge_step), "pre1": float(det.pre1),
               "pre2": float(det.pre2), "norm1": float(det.norm1), "norm2": float(det.norm2),
               "nnorm": int(det.nnorm), "n_points": int(e.size),
               "flat_mean_post": float(np.mean(g.flat[(e > g.e0 + det.norm1) & (e < g.e0 + det.norm2)]))}
        if f"r{i}" in d:
            r = d[f"r{i}"]
            if np.all(np.isfinite(r)):
                row["reference_e0"] = float(find_e0(e.copy(), r.copy()))
        rows[str(name)] = row
    meta = {"larch_version": larch.__version__, "what": "larch pre_edge defaults on xasml read_xdi arrays"}
    Path(out).write_text(json.dumps({"meta": meta, "files": rows}, indent=1, sort_keys=True))
    print(f"{len(rows)} files -> {out}")


def athena(folder: str, out: str) -> None:
    import larch
    from larch.io import read_athena

    rows = {}
    for f in sorted(Path(folder).glob("*.prj")):
        try:
            p = read_athena(str(f))
        except Exception as exc:  # record larch's failure too
            rows[f.name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        groups = []
        for name, g in p.groups.items():
            item = {"name": name, "label": getattr(g, "label", None)}
            if hasattr(g, "energy"):
                mu = np.asarray(g.mu, dtype=float)
                item.update(n_points=int(g.energy.size), energy_first=float(g.energy[0]),
                            energy_last=float(g.energy[-1]), mu_sum=float(np.sum(mu)),
                            mu_sumsq=float(np.sum(mu * mu)), e0=float(getattr(g, "e0", np.nan)),
                            edge_step=float(getattr(g, "edge_step", np.nan)),
                            element=getattr(getattr(g.athena_params, "bkg", None), "z", None),
                            edge=getattr(getattr(g.athena_params, "fft", None), "edge", None),
                            has_i0=getattr(g, "i0", None) is not None)
            else:
                item["kind"] = "chi"
            groups.append(item)
        rows[f.name] = {"groups": groups}
    meta = {"larch_version": larch.__version__, "what": "larch read_athena (do_preedge=True)"}
    Path(out).write_text(json.dumps({"meta": meta, "files": rows}, indent=1, sort_keys=True, default=str))
    print(f"{len(rows)} projects -> {out}")


def beamline(choices: str, folder: str, out: str) -> None:
    import larch
    from larch import Group
    from larch.io import read_ascii, read_fdmnes
    from larch.xafs import pre_edge

    picks = json.loads(Path(choices).read_text())
    rows = {}
    for name, pick in sorted(picks.items()):
        f = Path(folder) / name
        fdmnes = "fdmnes" in f.read_text(errors="replace").splitlines()[0].lower()
        g = read_fdmnes(str(f)) if fdmnes else read_ascii(str(f))
        row = {"array_labels": list(g.array_labels), "n_points": int(g.data.shape[1]),
               "energy_units": getattr(g, "energy_units", "eV"), "energy_column": getattr(g, "energy_column", 1),
               "mono_dspace": getattr(g, "mono_dspace", None)}
        if "error" in pick:
            row["xasml_error"] = pick["error"]
            rows[name] = row
            continue
        # the energy: larch's column at xasml's index, in larch's units
        e = np.asarray(g.data[pick["energy_index"] - 1], dtype=float)
        src = pick["energy_source"]
        if fdmnes:
            e = np.asarray(g.energy, dtype=float)  # read_fdmnes adds E_edge
        elif "keV" in src:
            e = e * 1000.0
        elif "angle" in src:
            e = 12398.419843320026 / (2.0 * g.mono_dspace * np.sin(np.radians(e)))
        # the mu: xasml's expression on larch's arrays (names xasml and larch share), else not recorded
        env = {lab: np.asarray(g.data[i], dtype=float) for i, lab in enumerate(g.array_labels)}
        if fdmnes:
            env["xanes"] = np.asarray(g.data[1], dtype=float)
        env.update(ln=np.log, log=np.log, exp=np.exp)
        try:
            mu = np.asarray(eval(pick["mu_source"], {"__builtins__": {}}, env), dtype=float)  # noqa: S307 - own fixture
        except NameError as exc:
            row["mu_error"] = f"xasml's mu {pick['mu_source']!r} uses names larch does not give: {exc}"
            rows[name] = row
            continue
        order = np.argsort(e, kind="stable")
        e, mu = e[order], mu[order]
        keep = np.concatenate(([True], np.diff(e) > 0))
        grp = Group(energy=e[keep], mu=mu[keep])
        pre_edge(grp)
        row.update(mu_source=pick["mu_source"], e0=float(grp.e0), edge_step=float(grp.edge_step))
        rows[name] = row
    meta = {"larch_version": larch.__version__,
            "what": "larch read_ascii (read_fdmnes) names; pre_edge e0 on xasml's mu rebuilt from larch arrays"}
    Path(out).write_text(json.dumps({"meta": meta, "files": rows}, indent=1, sort_keys=True, default=str))
    print(f"{len(rows)} files -> {out}")


if __name__ == "__main__":
    {"xasdl": xasdl, "athena": athena, "beamline": beamline}[sys.argv[1]](*sys.argv[2:])
