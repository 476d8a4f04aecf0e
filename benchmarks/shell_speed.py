"""Shell speed of the one-file commands a beamline user types (issue 17, item 4).

Each command is run as a new process, exactly as from a shell (the ``xasml`` console script next
to the Python running this benchmark, or ``python -m xasml.cli`` when there is none), on real files:

* an XDI file of the XAS Data Library (``Fe/Fe2O3_rt_01.xdi``),
* an Athena project (``athena-projects/FeS2.prj``, Fe K edge),
* a column file (``tests/data/io/columns/cuo_tab.dat``, Cu K edge, tab-separated beamline columns),

for ``measure read --json``, ``local predict --task oxidation --json`` and
``local predict --task all --json``. "Warm" means the files and Python's bytecode are in the page
cache: one run of each command is discarded, then ``--repeat`` runs are timed (wall clock of the
whole process) and their median is recorded, with every run's time and the SHA-256 of the
command's stdout (equal hashes before and after a change show that the answers did not change).

Per command, ``python -X importtime`` is run once more and the imports that cost most are
recorded: the top ``--top`` modules by cumulative time, the cumulative time of each third-party
top-level package (torch, sklearn, scipy, xraydb, ...) and the total import time.

The machine is shared (2 cores, other engineers, a FEFF simulation in the background), so the
load average is recorded beside the numbers; compare medians of runs made close together.

Usage::

    python benchmarks/shell_speed.py before|after [--repeat 7] [--top 25] [--src DIR/src]
                                    [--data-root ../shared/data] [--out benchmarks/results/shell_speed]

writes ``<out>/<label>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _files(data_root: Path) -> dict[str, Path]:
    return {
        "xdi": data_root / "experimental" / "xas-data-library" / "data" / "Fe" / "Fe2O3_rt_01.xdi",
        "athena": data_root / "experimental" / "athena-projects" / "FeS2.prj",
        "columns": REPO / "tests" / "data" / "io" / "columns" / "cuo_tab.dat",
    }


def _commands(files: dict[str, Path]) -> dict[str, list[str]]:
    cmds = {}
    for kind, path in files.items():
        cmds[f"measure read --json [{kind}]"] = ["measure", "read", "--json", str(path)]
        cmds[f"local predict --task oxidation --json [{kind}]"] = [
            "local", "predict", "--task", "oxidation", "--json", str(path)]
        cmds[f"local predict --task all --json [{kind}]"] = ["local", "predict", "--task", "all", "--json", str(path)]
    return cmds


def _launcher() -> list[str]:
    script = Path(sys.executable).with_name("xasml")
    return [str(script)] if script.exists() else [sys.executable, "-m", "xasml.cli"]


def _env(src: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO)
    return time.perf_counter() - t0, proc


def parse_importtime(stderr: str) -> list[dict]:
    """Rows of ``python -X importtime`` output: module, depth, self and cumulative time (s)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            head, cum_us, name = line.split("|", 2)
            self_us = int(head.split(":", 1)[1])
            cum_us = int(cum_us)
        except ValueError:
            continue
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append({"module": name.strip(), "depth": depth, "self_s": self_us / 1e6, "cumulative_s": cum_us / 1e6})
    return rows


def import_profile(args: list[str], env: dict[str, str], top: int) -> dict:
    """Import costs of one command: top modules by cumulative time and per third-party package."""
    code = "import sys; from xasml.cli import main; sys.argv[0] = 'xasml'; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], env=env,
                          capture_output=True, text=True, cwd=REPO)
    rows = parse_importtime(proc.stderr)
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    packages: dict[str, float] = {}
    for r in rows:  # the first import of a top-level package carries its whole cumulative cost
        root = r["module"].split(".")[0]
        if r["module"] == root and root not in stdlib and root not in packages and not root.startswith("_"):
            packages[root] = round(r["cumulative_s"], 4)
    total = sum(r["cumulative_s"] for r in rows if r["depth"] == 0)
    ranked = sorted(rows, key=lambda r: -r["cumulative_s"])[:top]
    return {
        "total_import_s": round(total, 3),
        "top_cumulative": [{"module": r["module"], "cumulative_s": round(r["cumulative_s"], 4),
                            "self_s": round(r["self_s"], 4)} for r in ranked],
        "third_party_cumulative_s": dict(sorted(packages.items(), key=lambda kv: -kv[1])[:top]),
        "heavy_loaded": sorted(p for p in ("torch", "sklearn", "scipy", "xraydb", "sqlalchemy", "pandas",
                                           "pymatgen", "matplotlib", "pydantic", "safetensors",
                                           "scipy.interpolate", "scipy.optimize", "scipy.signal", "scipy.stats")
                               if any(r["module"] == p for r in rows)),
    }


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("label", help="name of the result file, e.g. before or after")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per command after one discarded run")
    ap.add_argument("--top", type=int, default=25, help="imports to record per command")
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--only", default=None, help="run only the commands whose name contains this text")
    ap.add_argument("--src", default=str(REPO / "src"),
                    help="the xasml source tree to time (default: this checkout's src/; e.g. an earlier commit "
                         "extracted with 'git archive REV src | tar -x -C DIR' to time before and after together)")
    ap.add_argument("--revision", default=None, help="git revision of --src to record (default: this checkout's)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "shell_speed"))
    args = ap.parse_args(argv)

    files = _files(Path(args.data_root))
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        ap.error(f"missing input files: {', '.join(missing)}")
    env = _env(args.src)
    launcher = _launcher()
    results = {}
    for name, cmd in _commands(files).items():
        if args.only and args.only not in name:
            continue
        _run_once(launcher + cmd, env)  # warm-up, discarded
        times, hashes, status = [], set(), set()
        for _ in range(args.repeat):
            dt, proc = _run_once(launcher + cmd, env)
            times.append(dt)
            hashes.add(hashlib.sha256(proc.stdout.encode()).hexdigest()[:16])
            status.add(proc.returncode)
        prof = import_profile(cmd, env, args.top)
        results[name] = {
            "argv": ["xasml", *cmd], "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "runs_s": [round(t, 3) for t in times],
            "exit_status": sorted(status), "stdout_sha256": sorted(hashes), **prof,
        }
        print(f"{name:55s} median {results[name]['median_s']:.2f} s  (min {results[name]['min_s']:.2f}, "
              f"imports {prof['total_import_s']:.2f} s; heavy: {', '.join(prof['heavy_loaded']) or '-'})",
              flush=True)
    out = {
        "label": args.label, "git_revision": args.revision or _git_revision(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "repeat": args.repeat,
        "launcher": launcher, "src": args.src, "commands": results,
    }
    path = Path(args.out) / f"{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
