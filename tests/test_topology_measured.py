"""``xasml topology predict`` on measured files: reader options, Athena projects and column files,
physical checks, missing edges with the atom-type-only probability (issue 9, sections 1 and 6).

Real files only: the hematite XDI of the XAS Data Library (tests/data/measure), the Cu metal XDI,
the CuO column file and the Cu Athena project of tests/data/io.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xasml.cli import main

DATA = Path(__file__).resolve().parent / "data"
HEMATITE = DATA / "measure" / "Fe2O3_rt_01.xdi"  # Sample.formula: Fe2O3, Fe K only
CU_XDI = DATA / "io" / "xdi" / "cu_metal_rt.xdi"
CUO_COLUMNS = DATA / "io" / "columns" / "cuo_tab.dat"  # energy i0 it iref, no element in the header
CU_PRJ = DATA / "io" / "athena" / "cu.prj"  # three Cu metal groups


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["topology", "predict", *map(str, args)])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return code, cap.out, cap.err


def _json(capsys, *args) -> tuple[dict, str]:
    code, out, err = _run(capsys, "--json", *args)
    assert code == 0, err
    return json.loads(out), err


def _rewrite(src: Path, dst: Path, header=None, keep_row=None) -> Path:
    """Copy an XDI file, editing header lines (``header(line) -> line or None``) and data rows."""
    out = []
    for line in src.read_text().splitlines():
        if line.startswith("#"):
            line = header(line) if header else line
        elif line.strip() and keep_row is not None and not keep_row(float(line.split()[0])):
            line = None
        if line is not None:
            out.append(line)
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_hematite_one_edge_names_missing_o_and_gives_atom_type_probability(capsys):
    res, err = _json(capsys, HEMATITE)
    assert res["elements"] == ["Fe"] and res["formula"] == "Fe2O3"
    assert res["missing_edges"] == ["O"]
    at = res["atom_type_only"]
    assert at["elements"] == ["O", "Fe"] and at["model_name"] == "svm_type"
    assert 0 <= at["probability"] <= 1 and at["topological"] == (at["probability"] >= at["threshold"])
    # hematite is trivial: the atom-type baseline over Fe and O says so, the network on Fe alone does not,
    # so its headline is withheld (issue 16 item 5)
    assert not at["topological"] and res["network_probability"] >= res["threshold"]
    assert res["status"] == "incomplete" and res["probability"] is None and res["topological"] is None
    missing = [w for w in res["warnings"] if w.startswith("missing edges: O")]
    assert len(missing) == 1 and "Fe2O3" in missing[0] and f"{at['probability']:.3f}" in missing[0]
    assert f"warning: {missing[0]}" in err.splitlines()  # also on stderr, as every warning
    assert res["inputs"][0]["kind"] == "measured" and "e0_measured" in res["inputs"][0]["preprocessing"]
    # text output says the same
    code, out, _ = _run(capsys, HEMATITE)
    assert code == 0
    assert "missing edges: O (compound Fe2O3)" in out
    assert "atom-type only (SVM-type, O, Fe): P(topological) = " in out


def test_formula_option_and_no_formula_warning(capsys, tmp_path):
    res, _ = _json(capsys, "--formula", "Fe2O3", CU_XDI)  # a formula without Cu: Fe and O missing
    assert res["missing_edges"] == ["O", "Fe"] and res["atom_type_only"]["elements"] == ["O", "Fe", "Cu"]
    res, _ = _json(capsys, "--formula", "Cu", CU_XDI)
    assert res["missing_edges"] == [] and not any("missing edges" in w for w in res["warnings"])
    assert res["status"] == "ok" and res["probability"] == res["network_probability"]
    # one element, formula unknown: a warning that edges may be missing, with the atom-type probability
    no_formula = _rewrite(HEMATITE, tmp_path / "fe.xdi",
                          header=lambda ln: None if "Sample.formula" in ln else ln)
    res, _ = _json(capsys, no_formula)
    assert res["formula"] is None and res["missing_edges"] == []
    assert any("Fe is the only element given and the compound's formula is unknown" in w for w in res["warnings"])
    code, _, err = _run(capsys, "--formula", "Fe2Xx3", HEMATITE)
    assert code == 2 and "--formula: formula 'Fe2Xx3' cannot be parsed" in err


def test_xdi_without_element_header_takes_element_and_edge_options(capsys, tmp_path):
    bare = _rewrite(HEMATITE, tmp_path / "bare.xdi",
                    header=lambda ln: None if ln.startswith(("# Element.", "# Sample.formula")) else ln)
    res, _ = _json(capsys, bare)  # identified from the data, with a warning naming the file
    assert res["elements"] == ["Fe"]
    assert any(w.startswith(f"{bare}: absorber identified from the data as Fe K") for w in res["warnings"])
    res, _ = _json(capsys, "--element", "Fe", "--edge", "K", "--formula", "Fe2O3", bare)
    assert res["elements"] == ["Fe"] and res["missing_edges"] == ["O"]
    assert not any("identified from the data" in w for w in res["warnings"])
    # column options read the XDI file as columns: same spectrum, same answer
    res2, _ = _json(capsys, "--element", "Fe", "--edge", "K", "--energy-col", "energy", "--mu", "ln(i0/itrans)",
                    "--formula", "Fe2O3", bare)
    assert res2["network_probability"] == pytest.approx(res["network_probability"], abs=1e-6)


def test_column_file_is_measured_and_takes_reader_options(capsys):
    res, _ = _json(capsys, "--element", "Cu", "--edge", "K", "--mu", "ln(i0/it)", "--formula", "CuO", CUO_COLUMNS)
    rec = res["inputs"][0]
    assert rec["kind"] == "measured" and "preprocessing" in rec  # preprocessed as in the paper
    assert res["elements"] == ["Cu"] and res["missing_edges"] == ["O"]
    # the reference channel as mu: still Cu K
    res_ref, _ = _json(capsys, "--element", "Cu", "--mu", "ln(it/iref)", CUO_COLUMNS)
    assert res_ref["elements"] == ["Cu"]
    code, _, err = _run(capsys, "--mu", "nosuch", CUO_COLUMNS)
    assert code == 2 and str(CUO_COLUMNS) in err and "nosuch" in err


def test_athena_project_needs_a_group_when_it_holds_several_samples(capsys):
    code, out, err = _run(capsys, "--json", CU_PRJ)
    assert code == 2 and out == ""
    assert f"{CU_PRJ}: the Athena project holds 3 samples ('cu010k.dat', 'cu050k.dat', 'cu150k.dat')" in err
    assert "--group LABEL" in err
    res, _ = _json(capsys, "--group", "cu050k.dat", CU_PRJ)
    rec = res["inputs"][0]
    assert rec["group"] == "cu050k.dat" and rec["kind"] == "measured" and res["elements"] == ["Cu"]
    code, _, err = _run(capsys, "--group", "nope", CU_PRJ)
    assert code == 2 and "no group labelled 'nope'" in err and "'cu010k.dat'" in err
    code, _, err = _run(capsys, "--group", "cu050k.dat", "--mu", "ln(i0/it)", CU_PRJ)
    assert code == 2 and "--energy-col/--mu are for column files" in err
    code, _, err = _run(capsys, "--group", "x", HEMATITE)
    assert code == 2 and "--group chooses a group of an Athena project" in err


def test_cu_data_labelled_fe_is_an_error_naming_file_and_edge(capsys, tmp_path):
    fake = _rewrite(CU_XDI, tmp_path / "cu_labelled_fe.xdi",
                    header=lambda ln: ln.replace("Element.symbol: Cu", "Element.symbol: Fe"))
    code, out, err = _run(capsys, "--json", fake)
    assert code == 2 and out == ""
    line = err.strip()
    assert line.startswith(f"xasml: error: {fake}") and "\n" not in line
    assert "Fe K edge" in line and "xraydb.guess_edge: Cu K" in line and "--element/--edge" in line
    # told the right element, the same file predicts
    res, _ = _json(capsys, "--element", "Cu", fake)
    assert res["elements"] == ["Cu"]


def test_scan_that_stops_before_the_edge(capsys, tmp_path):
    before = _rewrite(HEMATITE, tmp_path / "to_7050.xdi", keep_row=lambda e: e <= 7050)
    code, out, err = _run(capsys, "--json", before)
    assert code == 2 and out == ""
    assert f"{before}, field 'energy': the scan" in err and "ends before the Fe K edge" in err
    at_edge = _rewrite(HEMATITE, tmp_path / "to_7105.xdi", keep_row=lambda e: e <= 7105)
    code, out, err = _run(capsys, "--json", at_edge)
    assert code == 2 and out == "" and "the scan does not contain the edge" in err and str(at_edge) in err
    # stops just after the edge: a prediction, with the doubt in the warnings
    short = _rewrite(HEMATITE, tmp_path / "to_7135.xdi", keep_row=lambda e: e <= 7135)
    res, _ = _json(capsys, short)
    assert any(w.startswith(f"{short}: only") and "post-edge" in w for w in res["warnings"])


def test_check_measured_is_the_measure_read_check(tmp_path):
    import warnings

    from xasml.errors import SpectrumError
    from xasml.io import read_spectrum
    from xasml.measure.core import check_measured, measure_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_spectrum(HEMATITE)
    e0, doubts = check_measured(s)
    assert 7110 < e0 < 7130 and doubts == []
    assert measure_file(HEMATITE)[0]["warnings"] == []
    with pytest.raises(SpectrumError, match="xraydb.guess_edge: Fe K"):
        check_measured(s.replace(absorbing_element="Cu"))


def test_bundled_atom_type_model_is_the_seed0_svm_type():
    from xasml.models.baselines import AtomTypeSVM
    from xasml.models.validate import load_checked_estimator
    from xasml.topology.run import BUNDLED_ATOM_TYPE_MODEL

    est = load_checked_estimator(BUNDLED_ATOM_TYPE_MODEL)
    assert isinstance(est, AtomTypeSVM) and est.copies == 1 and est.seed == 0
    assert json.loads((BUNDLED_ATOM_TYPE_MODEL / "estimator.json").read_text())["model"] == "svm_type"


def test_feo_from_one_edge_of_two_withholds_the_headline(capsys, shared_data):
    """Issue 16 item 5: ``--formula FeO feo_rt1.xdi`` printed "topological 0.967" from the Fe edge alone
    (atom-type-only 0.303); the headline is now withheld, the atom-type probability beside it, and
    ``--allow-incomplete`` gives today's answer."""
    feo = shared_data / "experimental" / "xdi-examples" / "data" / "feo_rt1.xdi"
    res, err = _json(capsys, "--formula", "FeO", feo)
    assert res["status"] == "incomplete" and res["missing_edges"] == ["O"]
    assert res["probability"] is None and res["topological"] is None and 0 <= res["network_probability"] <= 1
    assert res["atom_type_only"]["elements"] == ["O", "Fe"]
    assert any(w.startswith("headline withheld") for w in res["warnings"]) and "headline withheld" in err
    code, out, _ = _run(capsys, "--formula", "FeO", feo)
    assert code == 0 and out.startswith("P(topological): withheld (status incomplete")
    assert "topological (threshold" not in out.splitlines()[0] and "atom-type only (SVM-type, O, Fe)" in out
    allowed, _ = _json(capsys, "--formula", "FeO", "--allow-incomplete", feo)
    assert allowed["status"] == "incomplete-allowed"
    assert allowed["probability"] == pytest.approx(res["network_probability"])
    assert allowed["topological"] == (allowed["probability"] >= allowed["threshold"])
