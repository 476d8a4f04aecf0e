"""User mistakes give one line on stderr naming the file, the value and what is expected, exit
status 2 and no traceback (issue 10, items 4 and 5); one test per mistake, on its minimal input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xasml.cli import main
from xasml.errors import DataError, SpectrumError

DATA = Path(__file__).parent / "data"
POSCAR = DATA / "forward" / "cu" / "mp-1023125" / "POSCAR"
CIF = DATA / "feff" / "amcsd-10177" / "structure.cif"
MP_DOC = DATA / "io" / "mp" / "mp-1022728_xas_Cu_K.json"
CU_XDI = DATA / "io" / "xdi" / "cu_metal_rt.xdi"
CU2S_XDI = DATA / "topology" / "Cu2S_13K_01.xdi"
XMU = next(iter(sorted((DATA / "feff" / "omnixas").glob("*/FEFF-XANES/*/xmu.dat"))))


def cli_error(capsys, argv: list[str], *needles: str) -> str:
    """Run ``xasml argv`` in-process; assert exit 2, one stderr line holding every needle, no traceback."""
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert code == 2, (code, cap.err)
    assert len(lines) == 1, cap.err
    assert "Traceback" not in cap.err
    assert lines[0].startswith("xasml: error: ")
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def run_cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run ``python -m xasml.cli args`` in a subprocess (crashes and pipes cannot hurt the test run)."""
    return subprocess.run([sys.executable, "-m", "xasml.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture
def cu_xyz(tmp_path) -> Path:
    p = tmp_path / "cu.xyz"
    p.write_text("2\n\n29 0 0 0\n8 1.9 0 0\n")
    return p


# -- forward predict ------------------------------------------------------------------------------


def test_forward_absorbing_index_out_of_range_poscar(capsys, tmp_path):
    shutil.copy(POSCAR, tmp_path / "POSCAR")
    cli_error(capsys, ["forward", "predict", "--absorbing-index", "99", tmp_path / "POSCAR"],
              "POSCAR", "99", "8 sites", "0-7")


def test_forward_absorbing_index_out_of_range_xyz(capsys, cu_xyz):
    cli_error(capsys, ["forward", "predict", "--absorbing-index", "99", cu_xyz], str(cu_xyz), "99", "2 atoms")


def test_forward_negative_absorbing_index_rejected(capsys, cu_xyz, tmp_path):
    cli_error(capsys, ["forward", "predict", "--absorbing-index", "-1", cu_xyz], str(cu_xyz), "-1", "negative")
    shutil.copy(POSCAR, tmp_path / "POSCAR")
    cli_error(capsys, ["forward", "predict", "--absorbing-index", "-1", tmp_path / "POSCAR"], "POSCAR", "-1")


def test_forward_xyz_absorber_not_first(capsys, tmp_path):
    p = tmp_path / "c_first.xyz"
    p.write_text("2\n\n6 0 0 0\n29 1.9 0 0\n")
    line = cli_error(capsys, ["forward", "predict", p], str(p), "absorber must be the first atom",
                     "--absorbing-index 1")
    # the real cause comes before the missing-model remark
    assert line.index("absorber must be the first") < line.index("no shipped forward model")


def test_forward_xyz_wrong_absorber_for_given_model(capsys, cu_xyz):
    from xasml.forward.predict import SHIPPED

    cli_error(capsys, ["forward", "predict", "--model", SHIPPED / "Fe", cu_xyz], str(cu_xyz), "Cu",
              "predicts Fe")


def test_forward_poscar_with_nan_lattice_does_not_crash(tmp_path):
    """It segfaulted in spglib; run in a subprocess so a crash fails the test, not the test run."""
    lines = POSCAR.read_text().splitlines()
    lines[2] = " nan 0 0"
    p = tmp_path / "POSCAR"
    p.write_text("\n".join(lines) + "\n")
    res = run_cli(["forward", "predict", p])
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert str(p) in res.stderr and "non-finite" in res.stderr


def test_forward_xyz_with_nan_coordinates(capsys, tmp_path):
    p = tmp_path / "nan.xyz"
    p.write_text("2\n\n29 0 0 0\n8 nan 0 0\n")
    cli_error(capsys, ["forward", "predict", p], str(p), "atom 1", "non-finite", "expected finite")


def test_forward_lone_atom_xyz_with_nan(capsys, tmp_path):
    p = tmp_path / "lone.xyz"
    p.write_text("1\n\n29 nan nan nan\n")
    cli_error(capsys, ["forward", "predict", p], str(p), "non-finite")


def test_forward_disordered_cif(capsys, tmp_path):
    text = CIF.read_text().replace("Ta  Ta0  1  0.00000000  0.00000000  0.25000000  1",
                                   "Ta  Ta0  1  0.00000000  0.00000000  0.25000000  0.5")
    p = tmp_path / "disordered.cif"
    p.write_text(text)
    from xasml.forward.predict import SHIPPED

    cli_error(capsys, ["forward", "predict", "--model", SHIPPED / "Cu", p], str(p), "disordered structure",
              "Ta0.5", "partial or mixed occupancy")


@pytest.mark.parametrize("matrix,cause", [
    ("0 0 0\n0 0 0\n0 0 0", "degenerate cell"),
    ("1 0 0\n2 0 0\n0 0 1", "degenerate cell"),
])
def test_structure_reader_rejects_degenerate_cells(tmp_path, matrix, cause):
    from xasml.io.structures import read_structure

    lines = POSCAR.read_text().splitlines()
    lines[2:5] = matrix.splitlines()
    p = tmp_path / "POSCAR"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=cause) as exc:
        read_structure(p)
    assert str(p) in str(exc.value)


def test_structure_reader_rejects_nan_site(tmp_path):
    from xasml.io.structures import read_structure

    lines = POSCAR.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.strip().lower().startswith(("direct", "cartesian"))) + 1
    lines[i] = "nan 0.5 0.5"
    p = tmp_path / "POSCAR"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="non-finite") as exc:
        read_structure(p)
    assert str(p) in str(exc.value)


def test_valid_structures_still_read():
    from xasml.io.structures import read_structure

    assert len(read_structure(POSCAR, ordered=True)) == 8
    assert read_structure(CIF, ordered=True).is_ordered


# -- local ---------------------------------------------------------------------------------------


def test_local_run_on_four_sites(capsys, tmp_path):
    out = tmp_path / "run"
    cli_error(capsys, ["local", "run", "--quick", "--data", DATA / "local", "--out", out],
              str(DATA / "local"), "4 Cu site(s)", "at least 10 materials")
    assert not out.exists()  # nothing written for a run that cannot start


def test_grouped_split_too_few_materials_says_how_many():
    from xasml.datasets.local import grouped_stratified_split, min_materials

    assert min_materials((0.8, 0.1, 0.1)) == 10
    with pytest.raises(DataError, match="at least 10 materials"):
        grouped_stratified_split(["a"] * 4, ["m1", "m2", "m3", "m4"])


def test_local_quick_keeps_values_set_in_config(tmp_path):
    import argparse

    from xasml.local.cli import resolve_run_config

    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"epochs": 7, "n_models": 5}))
    ns = argparse.Namespace(config=str(cfg_file), paper=False, quick=True, data=None, element=None, seed=None,
                            n_jobs=None)
    cfg = resolve_run_config(ns)
    assert cfg.epochs == 7 and cfg.n_models == 5  # from the file
    assert cfg.regression_epochs == 3 and cfg.robustness is False  # from --quick
    ns.quick = False
    ns.seed = 3
    assert resolve_run_config(ns).seed == 3
    ns.paper, ns.quick, ns.config = True, True, None
    cfg = resolve_run_config(ns)
    assert (cfg.epochs, cfg.class_weight, cfg.lr_schedule, cfg.n_models) == (3, None, "constant", 2)  # --quick wins
    ns.n_jobs = 0
    with pytest.raises(DataError, match="^command line: field 'n_jobs': Input should be greater than or equal to 1"):
        resolve_run_config(ns)


def test_local_predict_json_errors_on_stderr(capsys, tmp_path):
    bad = tmp_path / "xmu.dat"
    bad.write_text("# nothing\n1 2 3\n")
    code = main(["local", "predict", "--task", "cn", "--json", str(XMU), str(bad)])
    cap = capsys.readouterr()
    assert code == 2
    out = [json.loads(line) for line in cap.out.splitlines()]
    assert [o["file"] for o in out] == [str(XMU)]  # results only, one object per good input
    assert len(cap.err.strip().splitlines()) == 1 and str(bad) in cap.err and "Traceback" not in cap.err


# -- topology ------------------------------------------------------------------------------------


@pytest.fixture
def au_l3_xdi(tmp_path) -> Path:
    out = []
    for line in CU_XDI.read_text().splitlines():
        if line.startswith("#"):
            line = (line.replace("Element.edge: K", "Element.edge: L3").replace("Element.symbol: Cu", "Element.symbol: Au")
                    .replace("Scan.edge_energy: 8980.0", "Scan.edge_energy: 11919.0"))
        elif line.strip():
            parts = line.split()
            parts[0] = f"{float(parts[0]) + 2939.0:.1f}"
            line = "  ".join(parts)
        out.append(line)
    p = tmp_path / "au_l3.xdi"
    p.write_text("\n".join(out) + "\n")
    return p


def test_topology_l3_file_names_the_edge_first(capsys, au_l3_xdi):
    line = cli_error(capsys, ["topology", "predict", "--json", au_l3_xdi], str(au_l3_xdi), "L3 edge", "K-edge")
    assert line.index("L3") < line.index("known:")
    assert capsys.readouterr().out == ""


def test_topology_l3_beside_a_k_file_warns(capsys, au_l3_xdi, tmp_path):
    code = main(["topology", "predict", "--json", str(CU_XDI), str(au_l3_xdi)])
    cap = capsys.readouterr()
    assert code == 0 and json.loads(cap.out)["elements"] == ["Cu"]
    assert cap.err.strip() == f"warning: {au_l3_xdi}: Au L3 edge ignored; the model uses K-edge spectra"


def test_topology_refuses_to_merge_two_files_of_one_element(capsys, tmp_path):
    a, b = tmp_path / "a.xdi", tmp_path / "b.xdi"
    shutil.copy(CU_XDI, a)
    shutil.copy(CU2S_XDI, b)
    cli_error(capsys, ["topology", "predict", "--json", a, b], str(b), str(a), "second Cu", "--compound NAME")
    assert capsys.readouterr().out == ""
    assert main(["topology", "predict", "--json", "--compound", "CuX", str(a), str(b)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["material_id"] == "CuX" and res["elements"] == ["Cu"]


# -- the command line ------------------------------------------------------------------------------


def test_exit_status_1_only_for_unexpected_failures(capsys, monkeypatch):
    import xasml.forward.predict as fp

    def boom(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(fp, "iter_predictions", boom)
    with pytest.raises(RuntimeError):  # not swallowed: the console script prints it and exits 1
        main(["forward", "predict", "x.xyz"])


def test_show_config_into_closed_pipe_is_quiet():
    """``xasml topology run --show-config | head -1``: no BrokenPipeError traceback."""
    p = subprocess.Popen([sys.executable, "-m", "xasml.cli", "topology", "run", "--show-config"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()  # the reader goes away, as head does
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_warnings_printed_as_warning_file_message(capsys):
    import warnings

    from xasml.cli import _show_warning

    _show_warning(UserWarning("a.xdi: no Mono.d_spacing"), UserWarning, "/x/xasml/io/xdi.py", 12)
    assert capsys.readouterr().err == "warning: a.xdi: no Mono.d_spacing\n"
    w = UserWarning("odd header")
    w.source = "b.xdi"
    _show_warning(w, UserWarning, "/x/xasml/io/xdi.py", 12)
    assert capsys.readouterr().err == "warning: b.xdi: odd header\n"
    assert warnings.showwarning is not _show_warning  # only while a command runs


# -- run folders -----------------------------------------------------------------------------------


def test_run_folder_refuses_non_empty_out(tmp_path):
    from xasml.runs import RunFolder

    out = tmp_path / "run"
    RunFolder(out, {"a": 1}).write_metrics({"old": True})
    (out / "models" / "stale").mkdir(parents=True)
    with pytest.raises(DataError, match="not empty.*--overwrite") as exc:
        RunFolder(out, {"a": 2})
    assert str(out) in str(exc.value)
    assert json.loads((out / "config.json").read_text()) == {"a": 1}  # untouched
    RunFolder(out, {"a": 2}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "run.json"]  # cleared first


def test_overwrite_clears_only_run_folders(tmp_path):
    from xasml.runs import RunFolder

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a run folder"):
        RunFolder(tmp_path, {}, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_default_run_dirs_are_fresh(tmp_path):
    from xasml.runs import default_run_dir

    a = default_run_dir("forward", tmp_path)
    a.mkdir()
    b = default_run_dir("forward", tmp_path)
    assert a != b and not b.exists() and b.name.startswith("forward-")


def test_cli_rerun_into_existing_out_refused(capsys, tmp_path):
    from xasml.runs import RunFolder

    out = tmp_path / "r"
    RunFolder(out, {})
    cli_error(capsys, ["topology", "run", "--out", out, "--quiet"], str(out), "not empty", "--overwrite")


def test_forward_run_default_out_is_timestamped():
    from xasml.forward.cli import add_parser
    import argparse

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["forward", "run"])
    assert args.out is None and args.overwrite is False


# -- readers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,content,cause", [
    ("utf8.json", b'{"a": "\xff\xfe"}', "not UTF-8"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("bigint.json", b'{"x": ' + b"9" * 4400 + b"}", "4300"),
])
def test_mp_reader_bad_json(tmp_path, name, content, cause):
    from xasml.io.mp import read_mp_xas_document

    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(SpectrumError, match=cause) as exc:
        read_mp_xas_document(p)
    assert str(exc.value).startswith(str(p)) and "\n" not in str(exc.value)


def test_mp_reader_partly_occupied_site(tmp_path):
    from xasml.io.mp import read_mp_xas_document

    doc = json.loads(MP_DOC.read_text())
    struct = doc.get("structure") or doc["spectrum"]["structure"]
    struct["sites"][0]["species"][0]["occu"] = 0.5
    p = tmp_path / "partial.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(SpectrumError, match="disordered structure: site 0") as exc:
        read_mp_xas_document(p)
    assert str(exc.value).startswith(str(p))


@pytest.mark.parametrize("z", ["0", "119", "999", "9" * 5000])
def test_feff_abs_z_out_of_range(tmp_path, z):
    from xasml.io.feff import read_feff_xmu

    text = XMU.read_text()
    assert "Z=29" in text
    p = tmp_path / "xmu.dat"
    p.write_text(text.replace("Z=29", f"Z={z}", 1))
    with pytest.raises(SpectrumError, match="Abs Z=.*out of range; expected 1-118") as exc:
        read_feff_xmu(p)
    assert str(exc.value).startswith(str(p)) and len(str(exc.value)) < 300


def test_feff_edge_found_on_a_long_header_line(tmp_path):
    """The edge pattern now runs once after the first ``Abs Z=`` (it was quadratic: 185 s for 160 kB)."""
    from xasml.io.feff import read_feff_xmu

    lines = XMU.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "Abs" in line and "Z=" in line)
    p = tmp_path / "xmu.dat"
    long_line = lines[i].replace(" K  shell", " ") + " Abs Z=29" * 20_000 + " L3 shell"
    assert len(long_line) > 160_000
    p.write_text("\n".join(lines[:i] + [long_line] + lines[i + 1:]) + "\n")
    s = read_feff_xmu(p)
    assert s.absorbing_element == "Cu" and s.edge == "L3"
    p.write_text("\n".join(lines[:i] + ["# Abs Z=29" + " Abs Z=29" * 20_000] + lines[i + 1:]) + "\n")
    assert read_feff_xmu(p).edge == "K"  # no shell named: the default


# -- label cache -----------------------------------------------------------------------------------


def _fake_label(task):
    import xasml.labels.site as site

    mid, _, idx, _ = task
    return [dict(site.asdict(site.SiteLabel(mid, int(i), "", error="fake"))) for i in idx]


def _tasks(n):
    return [(f"m{i}", POSCAR, [0]) for i in range(n)]


def test_label_cache_written_on_interrupt(tmp_path, monkeypatch):
    import xasml.labels.site as site

    calls = {"n": 0}

    def label(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return _fake_label(task)

    monkeypatch.setattr(site, "_label_task", label)
    cache = tmp_path / "labels.parquet"
    with pytest.raises(KeyboardInterrupt):
        site.label_sites(_tasks(5), cache=cache, n_jobs=1, checkpoint_every=100)
    kept = site.read_label_cache(cache)
    assert sorted(kept["material_id"]) == ["m0", "m1"]  # the work before the interrupt is kept
    monkeypatch.setattr(site, "_label_task", _fake_label)
    assert len(site.label_sites(_tasks(5), cache=cache, n_jobs=1)) == 5


def test_label_cache_checkpointed_by_time(tmp_path, monkeypatch):
    import xasml.labels.site as site

    writes = []
    real = site.write_label_cache
    monkeypatch.setattr(site, "_label_task", _fake_label)
    monkeypatch.setattr(site, "write_label_cache", lambda p, df: (writes.append(len(df)), real(p, df))[1])
    site.label_sites(_tasks(3), cache=tmp_path / "l.parquet", n_jobs=1, checkpoint_every=100,
                     checkpoint_seconds=0.0)
    assert writes[:3] == [1, 2, 3]  # one write per structure when the time limit is always reached


# -- model folders ---------------------------------------------------------------------------------


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _nan_weights(folder: Path) -> None:
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(folder / "weights.safetensors"))
    name = next(k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating) and v.size > 1)
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    save_file(arrays, str(folder / "weights.safetensors"))


@pytest.fixture
def fe_model(tmp_path) -> Path:
    from xasml.forward.predict import SHIPPED

    return _copy_model(SHIPPED / "Cu", tmp_path / "Cu")


@pytest.mark.parametrize("tamper,cause", [
    (lambda d: (d / "estimator.json").write_text("{not json"), "invalid JSON"),
    (lambda d: (d / "estimator.json").write_text("[]"), "expected {\"model\""),
    (lambda d: (d / "estimator.json").write_text(json.dumps({
        k: v for k, v in json.loads((d / "estimator.json").read_text()).items() if k != "model"})), "'model'"),
    (lambda d: (d / "estimator.json").write_text((d / "estimator.json").read_text().replace(
        '"n_outputs": 141', '"n_outputs": -1')), "state.n_outputs"),
    (lambda d: (d / "weights.safetensors").write_bytes((d / "weights.safetensors").read_bytes()[:100]),
     "cannot read the weights"),
    (_nan_weights, "non-finite"),
    (lambda d: (d / "forward.json").write_text(json.dumps(
        {**json.loads((d / "forward.json").read_text()),
         "energy": json.loads((d / "forward.json").read_text())["energy"][:10]})), "has 10 values"),
    (lambda d: (d / "forward.json").write_text("{"), "invalid JSON"),
])
def test_tampered_forward_model_folder(capsys, fe_model, tmp_path, tamper, cause):
    tamper(fe_model)
    xyz = tmp_path / "cu.xyz"
    xyz.write_text("2\n\n29 0 0 0\n8 1.9 0 0\n")
    cli_error(capsys, ["forward", "predict", "--model", fe_model, xyz], str(fe_model), cause)


def test_nan_weights_of_local_bundle(capsys, tmp_path):
    from xasml.models.bundle import SHIPPED_DIR

    b = _copy_model(SHIPPED_DIR / "Cu" / "coordination", tmp_path / "coordination")
    _nan_weights(b / "estimator")
    cli_error(capsys, ["local", "predict", "--task", "coordination", "--json", "--model", b, XMU],
              "weights.safetensors", "non-finite")
    assert capsys.readouterr().out == ""


def test_shortened_reference_of_local_bundle(capsys, tmp_path):
    from xasml.models.bundle import SHIPPED_DIR

    b = _copy_model(SHIPPED_DIR / "Cu" / "cn", tmp_path / "cn")
    meta = json.loads((b / "bundle.json").read_text())
    meta["reference_mu"] = meta["reference_mu"][:10]
    (b / "bundle.json").write_text(json.dumps(meta))
    cli_error(capsys, ["local", "predict", "--task", "cn", "--model", b, XMU], "bundle.json", "reference_mu",
              "10 values")


def test_nan_weights_of_topology_model_never_print_nan(capsys, tmp_path):
    from xasml.topology.run import BUNDLED_MODEL

    m = _copy_model(BUNDLED_MODEL, tmp_path / "model")
    _nan_weights(m)
    cli_error(capsys, ["topology", "predict", "--json", "--model", m, CU_XDI], "weights.safetensors", "non-finite")
    assert "NaN" not in capsys.readouterr().out


def test_topology_threshold_out_of_range(capsys, tmp_path):
    from xasml.topology.run import BUNDLED_MODEL

    m = _copy_model(BUNDLED_MODEL, tmp_path / "model")
    meta = json.loads((m / "estimator.json").read_text())
    meta["state"]["threshold"] = float("nan")
    (m / "estimator.json").write_text(json.dumps(meta))
    cli_error(capsys, ["topology", "predict", "--model", m, CU_XDI], "estimator.json", "state.threshold")


@pytest.mark.parametrize("content,cause", [
    ("9" * 5000 + "\n\n29 0 0 0\n", "atom count"),
    ("1\n\n" + "9" * 5000 + " 0 0 0\n", "atomic number 9999"),
    ("1\n\n-5 0 0 0\n", "atomic number -5 out of range"),
])
def test_xyz_huge_or_negative_numbers(tmp_path, content, cause):
    """Found by tests/test_fuzz.py: a 5000-digit count line raised a bare ValueError (Python's 4300-digit
    limit) and a 5000-digit atomic number gave a 5 kB message."""
    from xasml.io.structures import read_xyz

    p = tmp_path / "x.xyz"
    p.write_text(content)
    with pytest.raises(DataError, match=cause) as exc:
        read_xyz(p)
    assert str(exc.value).startswith(str(p)) and len(str(exc.value)) < 200


def _edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


@pytest.mark.parametrize("edit,cause", [
    (lambda d: d.update(element=None), "field 'element'"),
    (lambda d: d["descriptor"].update(r_cut=float("nan")), "descriptor"),
])
def test_forward_json_found_by_fuzzing(capsys, fe_model, cu_xyz, edit, cause):
    """Found by tests/test_fuzz.py::test_fuzz_model_folder_json: these raised ValueError/TypeError or
    blamed the structure file."""
    _edit_json(fe_model / "forward.json", edit)
    cli_error(capsys, ["forward", "predict", "--model", fe_model, cu_xyz], str(fe_model / "forward.json"), cause)


@pytest.mark.parametrize("edit,cause", [
    (lambda d: d.update(feature_slice=[float("inf"), 100]), "malformed bundle"),
    (lambda d: d["grid"].update(n_points=10**30), "field 'grid'"),
])
def test_bundle_json_found_by_fuzzing(capsys, tmp_path, edit, cause):
    """Found by the fuzz tests: OverflowError and a 10^30-point grid allocation."""
    from xasml.models.bundle import SHIPPED_DIR

    b = _copy_model(SHIPPED_DIR / "Cu" / "cn", tmp_path / "cn")
    _edit_json(b / "bundle.json", edit)
    cli_error(capsys, ["local", "predict", "--task", "cn", "--model", b, XMU], str(b / "bundle.json"), cause)


def test_help_into_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "xasml.cli", "local", "run", "--help"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Traceback" not in err, err


def test_forward_predict_json_one_object_per_good_input(capsys, cu_xyz, tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("2\n\n29 0 0 0\n8 nan 0 0\n")
    code = main(["forward", "predict", "--json", str(bad), str(cu_xyz)])
    cap = capsys.readouterr()
    assert code == 2
    assert [json.loads(line)["file"] for line in cap.out.splitlines()] == [str(cu_xyz)]
    assert len(cap.err.strip().splitlines()) == 1 and str(bad) in cap.err and "Traceback" not in cap.err


def test_topology_sites_of_one_compound_folder_still_merge(capsys, tmp_path):
    """Two Sn sites of one FEFF compound folder are one compound (no --compound needed)."""
    src = DATA / "topology" / "feff10" / "FEFF10" / "amcsd-10838"
    comp = tmp_path / "amcsd-10838"
    shutil.copytree(src, comp)
    shutil.copytree(comp / "FEFF-XANES" / "000_Sn", comp / "FEFF-XANES" / "005_Sn")
    files = sorted(str(p) for p in (comp / "FEFF-XANES").glob("*/xmu.dat"))
    assert len(files) == 3
    assert main(["topology", "predict", "--json", *files]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["elements"]) == ["Se", "Sn"]


def test_bundle_params_the_network_cannot_run(capsys, tmp_path):
    """Found by the fuzz tests: ``"dropout": -1`` in estimator.json failed inside torch at prediction."""
    from xasml.models.bundle import SHIPPED_DIR

    b = _copy_model(SHIPPED_DIR / "Cu" / "cn", tmp_path / "cn")
    _edit_json(b / "estimator" / "estimator.json", lambda d: d["params"].update(dropout=-1))
    cli_error(capsys, ["local", "predict", "--task", "cn", "--model", b, XMU], str(b / "estimator"),
              "do not fit together")


def test_topology_params_the_network_cannot_run(capsys, tmp_path):
    from xasml.topology.run import BUNDLED_MODEL

    m = _copy_model(BUNDLED_MODEL, tmp_path / "model")
    _edit_json(m / "estimator.json", lambda d: d["params"].update(hidden=7))
    cli_error(capsys, ["topology", "predict", "--model", m, CU_XDI], str(m))
