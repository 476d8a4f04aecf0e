"""Plain column files: separators, comma decimals, headers, larch exports, column choice and safe μ
expressions. The files in tests/data/io/columns are real data (see its README)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xasml.errors import SpectrumError
from xasml.io import detect_format, read_spectrum
from xasml.io.columns import evaluate_expression, read_column_table, read_columns
from xasml.io.xdi import read_xdi

VARIANTS = ["cuo_comma.csv", "cuo_semicolon_decimal_comma.txt", "cuo_tab.dat", "cuo_als.txt"]


@pytest.fixture(scope="module")
def cuo_xdi(test_data):
    return read_xdi(test_data / "io" / "xdi" / "CuO_tenorite_13K_01.xdi")


@pytest.mark.parametrize("name", VARIANTS)
def test_every_layout_gives_the_xdi_spectrum(test_data, cuo_xdi, name):
    path = test_data / "io" / "columns" / name
    assert detect_format(path) == "columns"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_spectrum(path)
    assert (s.absorbing_element, s.edge, len(s)) == ("Cu", "K", len(cuo_xdi))
    assert s.metadata["mu_source"] == "ln(i0/it)"
    np.testing.assert_allclose(s.energy, cuo_xdi.energy, atol=1e-3)
    np.testing.assert_allclose(s.mu, cuo_xdi.mu, atol=1e-4)


def test_separators_and_decimals_detected(test_data):
    d = test_data / "io" / "columns"
    t = read_column_table(d / "cuo_semicolon_decimal_comma.txt")
    assert (t.separator, t.decimal, t.columns) == (";", ",", ["e", "i0", "it", "iref"])
    assert t.header["element"] == "Cu" and t.header["edge"] == "K"
    t = read_column_table(d / "cuo_space_decimal_comma.dat")
    assert (t.separator, t.decimal, t.columns) == ("whitespace", ",", ["col1", "col2", "col3", "col4"])
    assert t.data["col1"][0] == pytest.approx(8760.019)
    assert read_column_table(d / "cuo_tab.dat").separator == "\t"
    assert read_column_table(d / "cuo_comma.csv").separator == ","


def test_headerless_file_needs_mu_and_takes_indices_and_expressions(test_data, cuo_xdi):
    path = test_data / "io" / "columns" / "cuo_space_decimal_comma.dat"
    with pytest.raises(SpectrumError, match=r"cuo_space_decimal_comma\.dat, field 'mu': which column is mu"):
        read_columns(path)
    s = read_columns(path, energy_col=1, mu="ln(col2/col3)", absorbing_element="Cu", edge="K")
    np.testing.assert_allclose(s.mu, cuo_xdi.mu, atol=1e-4)
    ref = read_columns(path, energy_col="1", mu=4, absorbing_element="Cu", edge="K")
    assert ref.metadata["mu_source"] == "col4"
    with pytest.raises(SpectrumError, match="column 9 out of range.*count from 1"):
        read_columns(path, energy_col=9, mu=2)


def test_larch_export_xmu(test_data):
    path = test_data / "io" / "columns" / "cu010k_larch.xmu"
    s = read_spectrum(path)
    assert s.metadata["columns"] == ["energy", "mu", "norm", "flat"]
    assert s.metadata["mu_source"] == "mu"
    assert (s.absorbing_element, s.edge) == ("Cu", "K")  # from the header's e0 = 8977.58
    assert s.metadata["element_source"] == "header (edge energy 8977.6 eV)"
    norm = read_columns(path, mu="flat", absorbing_element="Cu", edge="K")
    post = (norm.energy > 9100) & (norm.energy < 9400)
    assert np.mean(norm.mu[post]) == pytest.approx(1.0, abs=0.05)  # larch's flattened spectrum


def test_expression_evaluator_is_safe():
    cols = {"i0": np.array([2.0, 4.0]), "it": np.array([1.0, 1.0]), "if": np.array([1.0, 2.0]),
            "mu_ref": np.array([0.5, 0.6]), "i0(1)": np.array([3.0, 3.0])}
    np.testing.assert_allclose(evaluate_expression("ln(i0/it)", cols), np.log([2.0, 4.0]))
    np.testing.assert_allclose(evaluate_expression("-log(it/i0)", cols), np.log([2.0, 4.0]))
    np.testing.assert_allclose(evaluate_expression("if/i0", cols), [0.5, 0.5])
    np.testing.assert_allclose(evaluate_expression("MU_REF", cols), [0.5, 0.6])
    np.testing.assert_allclose(evaluate_expression("i0_1_ * 2 + 1", cols), [7.0, 7.0])
    for evil in ("__import__('os').system('true')", "i0.__class__", "(lambda: 1)()", "[i0][0]", "open('x')",
                 "i0 if it else it"):
        with pytest.raises(SpectrumError, match="unsupported construct|cannot parse|unknown column"):
            evaluate_expression(evil, cols, source="f.dat")
    with pytest.raises(SpectrumError, match="unknown column 'ix'"):
        evaluate_expression("ln(i0/ix)", cols)


def test_bad_column_files(tmp_path):
    f = tmp_path / "ragged.dat"
    f.write_text("# energy mu\n1 2\n3 4\n5\n")
    with pytest.raises(SpectrumError, match=r"ragged\.dat, line 4: data line has 1 columns"):
        read_column_table(f)
    f = tmp_path / "text.dat"
    f.write_text("energy mu\n1 2\n3 x\n")
    with pytest.raises(SpectrumError, match=r"text\.dat, line 3: value 'x' in column 2"):
        read_column_table(f)
    f = tmp_path / "zero.dat"
    f.write_text("# energy i0 it\n" + "".join(f"{8900 + i} 1 {0 if i == 3 else 0.5}\n" for i in range(10)))
    with pytest.raises(SpectrumError, match=r"zero\.dat, line 5, field 'mu': mu = ln\(i0/it\) is not finite"):
        read_columns(f, absorbing_element="Cu", edge="K")
    f = tmp_path / "empty.dat"
    f.write_text("# only a header\n")
    with pytest.raises(SpectrumError, match="no data lines"):
        read_column_table(f)


def test_kev_energies_and_descending_scan(test_data, cuo_xdi):
    t = read_column_table(test_data / "io" / "columns" / "cuo_comma.csv")
    rows = np.column_stack([t.data["energy"][::-1] / 1000.0, t.data["i0"][::-1], t.data["it"][::-1]])
    path = test_data.parent / "_tmp_kev.csv"
    try:
        np.savetxt(path, rows, delimiter=",", header="energy,i0,it", comments="", fmt="%.7f")
        s = read_columns(path, absorbing_element="Cu", edge="K")
    finally:
        path.unlink(missing_ok=True)
    np.testing.assert_allclose(s.energy, cuo_xdi.energy, atol=1e-3)
    assert any("keV" in w for w in s.metadata["warnings"])


def test_hostile_expressions_and_values(tmp_path):
    cols = {"i0": np.ones(3)}
    with pytest.raises(SpectrumError, match="at most 500"):
        evaluate_expression("-" * 100000 + "i0", cols)
    np.testing.assert_allclose(evaluate_expression("(" * 100 + "i0" + ")" * 100, cols), 1.0)
    f = tmp_path / "long.dat"
    f.write_text("1 2\n3 " + "x" * 5000 + "\n")
    with pytest.raises(SpectrumError, match="line 2") as exc:
        read_column_table(f)
    assert len(str(exc.value)) < 300


def test_csv_with_an_unnamed_index_column_reads_its_named_channels(shared_data):
    """pandas' to_csv writes ',energy,mu' over its rows (the Zn-Ti-O film's Ti reference): the
    empty first name is the index column (col1), energy and mu are found by name."""
    from xasml.io.reader import read_spectrum

    s = read_spectrum(shared_data / "experimental" / "tizn-film" / "ti_ref.csv", absorbing_element="Ti", edge="K")
    assert s.metadata["columns"] == ["col1", "energy", "mu"] and s.metadata["mu_source"] == "mu"
    assert 4700 < s.energy.min() < 4966 < s.energy.max() < 5600  # eV, around the Ti K edge
