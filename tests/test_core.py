"""Spectrum object, FEFF reader, grids, element averaging, standardisation, estimator storage."""

from __future__ import annotations

import numpy as np
import pytest

from xasml import Spectrum, SpectrumError, element_average
from xasml.io.feff import read_feff_compound, read_feff_xmu
from xasml.preprocess.grid import EnergyGrid, common_grid, interpolate_mu
from xasml.preprocess.standardize import PerElementStandardizer


def _spec(**kw):
    base = dict(energy=[1.0, 2.0, 3.0], mu=[0.1, 0.5, 1.0], absorbing_element="Cu")
    base.update(kw)
    return Spectrum(**base)


@pytest.mark.parametrize("kw, msg", [
    (dict(energy=[1.0, 1.0, 3.0]), "duplicate"),
    (dict(energy=[1.0, 3.0, 2.0]), "decreasing"),
    (dict(mu=[0.1, np.nan, 1.0]), "non-finite"),
    (dict(mu=[0.1, np.inf, 1.0]), "non-finite"),
    (dict(mu=[0.1, 0.2]), "length mismatch"),
    (dict(absorbing_element="Xx"), "unknown element"),
    (dict(energy=[], mu=[]), "empty"),
    (dict(edge="Q9"), "unknown edge"),
])
def test_spectrum_validation_names_source_and_problem(kw, msg):
    with pytest.raises(SpectrumError, match=msg) as err:
        _spec(source="sample.dat", **kw)
    assert "sample.dat" in str(err.value)


def test_spectrum_normalises_symbol_and_edge():
    s = _spec(absorbing_element="cu", edge="l3")
    assert s.absorbing_element == "Cu" and s.edge == "L3"
    with pytest.raises(ValueError):
        s.energy[0] = 5.0  # arrays are read-only


def test_read_feff10_xmu(test_data):
    path = test_data / "feff/amcsd-10177/FEFF-XANES/000_Ta/xmu.dat"
    s = read_feff_xmu(path)
    assert s.absorbing_element == "Ta" and s.edge == "K"
    assert s.absorbing_index == 0
    assert len(s) == 60  # 84 lines minus the 24-line header
    assert s.energy[0] == pytest.approx(67537.0677547276)
    assert s.mu[0] == pytest.approx(0.39728188194)
    assert s.metadata["feff_version"] == "10.0.0"
    assert s.metadata["e_fermi_rel"][0] == pytest.approx(-10.6487592)


def test_read_feff9_xmu(test_data):
    s = read_feff_xmu(test_data / "feff/omnixas/mp-1005792/FEFF-XANES/008_Cu/xmu.dat")
    assert s.absorbing_element == "Cu" and s.absorbing_index == 8
    assert s.energy[0] == pytest.approx(8984.506)
    assert s.metadata["feff_version"] == "9.9.1"


def test_read_feff_errors(tmp_path):
    empty = tmp_path / "xmu.dat"
    empty.write_text("")
    with pytest.raises(SpectrumError, match="empty file"):
        read_feff_xmu(empty)
    bad = tmp_path / "bad.dat"
    bad.write_text("#  Abs   Z=29 Rmt\n 8980.0 -1.0 0.1 0.5 0.5 0.0\n 8981.0 -0.5 0.2 oops 0.5 0.0\n")
    with pytest.raises(SpectrumError, match=r"bad.dat, line 3"):
        read_feff_xmu(bad)
    with pytest.raises(SpectrumError, match="file not found"):
        read_feff_xmu(tmp_path / "missing.dat")


def test_read_compound_uses_multiplicities(test_data):
    sites = read_feff_compound(test_data / "feff/amcsd-10177")
    assert [(s.absorbing_element, s.absorbing_index, s.multiplicity) for s in sites] == [("Ta", 0, 2), ("S", 2, 4)]
    assert {s.material_id for s in sites} == {"amcsd-10177"}


def test_element_average_is_multiplicity_weighted():
    a = Spectrum(np.linspace(0, 10, 11), np.zeros(11), "O", material_id="m", multiplicity=1)
    b = Spectrum(np.linspace(1, 12, 12), np.ones(12), "O", material_id="m", multiplicity=3)
    avg = element_average([a, b], n_points=5)
    assert avg.energy[0] == 1 and avg.energy[-1] == 10  # the overlap
    np.testing.assert_allclose(avg.mu, 0.75)
    assert avg.multiplicity == 4 and avg.kind == "average"
    with pytest.raises(SpectrumError):
        element_average([a, Spectrum(a.energy, a.mu, "S", material_id="m")])


def test_interpolation_and_grid():
    e = np.array([0.0, 1.0, 2.0])
    mu = np.array([0.0, 1.0, 4.0])
    np.testing.assert_allclose(interpolate_mu(e, mu, [-1, 0.5, 3]), [0.0, 0.5, 4.0])
    np.testing.assert_allclose(interpolate_mu(e, mu, [-1, 3], fill=0.0), [0.0, 0.0])
    np.testing.assert_allclose(interpolate_mu(e, mu, [3], fill="extrapolate"), [7.0])
    g = EnergyGrid(100.0, 156.0, 200)
    assert g.energy.shape == (200,) and g.step == pytest.approx(56 / 199)
    assert EnergyGrid.from_dict(g.to_dict()) == g


def test_common_grid_on_real_spectra(test_data):
    s = read_feff_xmu(test_data / "feff/omnixas/mp-1005792/FEFF-XANES/008_Cu/xmu.dat")
    g = common_grid([s], width=56.0, n_points=200)
    X = g.resample([s])
    assert X.shape == (1, 200) and np.all(np.isfinite(X))
    assert g.start == pytest.approx(s.energy[0])


def test_per_element_standardizer_roundtrip():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(5, 2, (4, 10)), rng.normal(-1, 0.1, (3, 10))])
    el = ["Cu"] * 4 + ["O"] * 3
    st = PerElementStandardizer().fit(X, el)
    Z = st.transform(X, el)
    assert abs(Z[:4].mean()) < 1e-12 and abs(Z[4:].mean()) < 1e-12
    assert np.mean(Z[:4].std(axis=1)) == pytest.approx(1.0)
    st2 = PerElementStandardizer.from_dict(st.to_dict())
    np.testing.assert_allclose(st2.inverse_transform(Z, el), X)
    with pytest.raises(Exception, match="not in the training data"):
        st.transform(X[:1], ["Fe"])


def test_dataset_roundtrip(tmp_path, test_data):
    from xasml.datasets.format import frame_to_spectra, read_dataset, spectra_to_frame, write_dataset
    from xasml.errors import DataError

    sites = read_feff_compound(test_data / "feff/amcsd-10177")
    frame = spectra_to_frame(sites, extra={"topological": [1, 1]})
    path = write_dataset(tmp_path / "d.parquet", frame, kind="topology", metadata={"grid": 1},
                         attribution="test")
    back, info = read_dataset(path, kind="topology")
    assert info["kind"] == "topology" and info["metadata"] == {"grid": 1}
    assert list(back["topological"]) == [1, 1]
    again = frame_to_spectra(back)
    np.testing.assert_array_equal(again[1].mu, sites[1].mu)
    assert again[1].multiplicity == 4 and again[1].absorbing_index == 2
    with pytest.raises(DataError, match="expected 'local'"):
        read_dataset(path, kind="local")
    (tmp_path / "x.parquet").write_text("nope")
    with pytest.raises(DataError, match="not a readable Parquet"):
        read_dataset(tmp_path / "x.parquet")


def test_atomic_write_gives_normal_permissions_and_keeps_old_file_on_error(tmp_path):
    import os

    from xasml.utils import atomic_path, atomic_write_text

    target = atomic_write_text(tmp_path / "a.txt", "old")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
