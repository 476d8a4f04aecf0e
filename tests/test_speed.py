"""The fast paths of the one-file shell commands (issue 17, item 4) give the same answers as the slow ones.

* :mod:`xasml.edges` reads xraydb's edge table from its SQLite file without importing xraydb:
  the table and :func:`~xasml.edges.guess_edge` must equal xraydb's own functions;
* element symbols and ChemEnv names come from the libraries' data files, equal to their classes';
* :mod:`xasml.models.inference` predicts with NumPy what the torch estimators predict (1e-6);
* the one-file commands import none of torch, scikit-learn, pandas, xraydb (no timing asserted).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_edge_table_equals_xraydb():
    import xraydb

    from xasml import edges

    symbols, levels = edges._levels()
    assert edges._levels_from_sqlite() is not None  # the fast path is the one in use here
    for z in range(1, 99):
        sym = xraydb.atomic_symbol(z)
        assert symbols[z] == sym
        want = {name: float(e.energy) for name, e in xraydb.xray_edges(sym).items()}
        assert levels.get(sym, {}) == want, sym
        assert list(levels.get(sym, {})) == list(want)  # same order (named in error messages)
    assert edges.edge_energy("Cu", "K") == xraydb.xray_edge("Cu", "K").energy
    # the fallback through xraydb's Python API builds the same table
    assert edges._levels_from_api()[1] == {k: v for k, v in levels.items() if k in edges._levels_from_api()[1]}


def test_guess_edge_equals_xraydb():
    """Around every tabulated K/L/M5 edge (where the choice flips) and on a 7 eV sweep to 40 keV."""
    import xraydb

    from xasml.edges import _levels, guess_edge

    points = set(np.arange(100.0, 40_000.0, 7.0).round(1))
    for edges in _levels()[1].values():
        for name in ("K", "L3", "L2", "L1", "M5"):
            if name in edges:
                e = edges[name]
                points.update(e + d for d in (-40.0, -3.0, -0.6, 0.0, 0.4, 1.1, 6.0, 25.0))
    bad = [(e, guess_edge(e), xraydb.guess_edge(e)) for e in sorted(points)
           if guess_edge(e) != tuple(xraydb.guess_edge(e))]
    assert not bad, bad[:5]


def test_identify_edge_without_constraints_is_xraydbs_guess():
    """Measured e0s of Fe, Cu, Sr K and Pt L3 files (and others) name xraydb's edges with xraydb's energies."""
    import xraydb

    from xasml.edges import identify_edge

    for e0 in (7112.0, 8982.0, 16140.0, 11564.0, 2472.0, 4966.0, 29200.0):
        el, ed, energy = identify_edge(e0)
        assert (el, ed) == tuple(xraydb.guess_edge(e0))
        assert energy == xraydb.xray_edge(el, ed).energy


def test_environment_names_equal_pymatgens():
    """ChemEnv names read from pymatgen's files are those of its AllCoordinationGeometries."""
    from xasml.labels.site import _coordination_geometries, _environment_names, environment_name

    names = _environment_names()
    assert len(names) >= 60 and names["S:4"] == "Square plane"
    table = _coordination_geometries()
    for symbol, name in names.items():
        assert table.get_geometry_from_mp_symbol(symbol).name == name
    for cg in table.cg_list:
        assert environment_name(cg.mp_symbol) == table.get_geometry_from_mp_symbol(cg.mp_symbol).name
    assert environment_name("other") == "other" and environment_name(None) is None


def test_element_symbols_equal_pymatgens():
    from pymatgen.core.periodic_table import Element

    from xasml.spectrum import _element_symbols, normalize_element

    assert _element_symbols() == frozenset(e.symbol for e in Element)
    assert normalize_element("cu") == "Cu" and normalize_element("OG") == "Og"


# -- NumPy inference of the local network ensembles ------------------------------------------------

def _shipped_bundles():
    from xasml.models.bundle import SHIPPED_DIR

    return sorted(p.parent for p in SHIPPED_DIR.glob("*/*/bundle.json"))


@pytest.mark.parametrize("folder", _shipped_bundles(), ids=lambda p: f"{p.parent.name}-{p.name}")
def test_numpy_inference_equals_torch_on_shipped_bundles(folder):
    """Every shipped bundle: the NumPy predictor and the torch estimator agree to 1e-6 on the
    bundle's own training spectra (real FEFF spectra on the model grid) and its reference spectrum."""
    from xasml.models.bundle import ModelBundle
    from xasml.models.inference import EnsemblePredictor

    b = ModelBundle.load(folder)
    assert isinstance(b.predictor, EnsemblePredictor) and "estimator" not in b.__dict__  # torch not loaded yet
    X_full = np.vstack([b.reference_mu[None, :], b.training_spectra[:200]])
    X = b.inputs(X_full)
    est = b.estimator  # restored from the folder on first access: the torch estimator
    assert type(est).__name__ in ("SpectrumClassifier", "SpectrumEnsembleRegressor")
    assert b.predictor is not est and b.predictor.n_features_in_ == est.n_features_in_
    if b.is_classifier:
        np.testing.assert_allclose(b.predictor.predict_proba_members(X), est.predict_proba_members(X), atol=1e-6)
        np.testing.assert_allclose(b.predictor.predict_proba(X), est.predict_proba(X), atol=1e-6)
        assert (b.predictor.predict(X) == est.predict(X)).mean() > 0.99  # argmax of near-ties may differ
        assert b.predictor.classes_.tolist() == est.classes_.tolist()
    else:
        np.testing.assert_allclose(b.predictor.predict_members(X), est.predict_members(X), rtol=1e-6, atol=1e-6)
        for got, want in zip(b.predictor.predict(X, return_std=True), est.predict(X, return_std=True)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_numpy_inference_equals_torch_for_a_cnn(tmp_path):
    """The convolution + max-pooling path (no shipped CNN): a CNN classifier trained briefly on the
    Cu training spectra, labelled by the shipped Cu environment model, saved and loaded both ways."""
    from xasml.models.bundle import SHIPPED_DIR, ModelBundle
    from xasml.models.inference import load_predictor
    from xasml.models.local_nets import SpectrumClassifier, SpectrumEnsembleRegressor

    b = ModelBundle.load(SHIPPED_DIR / "Cu" / "coordination")
    X = b.inputs(b.training_spectra[:300])
    y = b.predictor.predict(X)
    est = SpectrumClassifier(arch="cnn", n_members=3, epochs=2, seed=1, device="cpu").fit(X, y)
    p = load_predictor(est.save(tmp_path / "cnn"))
    np.testing.assert_allclose(p.predict_proba_members(X), est.predict_proba_members(X), atol=1e-6)
    reg = SpectrumEnsembleRegressor(arch="cnn", n_members=3, epochs=2, seed=1, device="cpu", pool_size=3)
    reg.fit(X, np.linspace(1.0, 3.0, len(X))).set_noise_std(0.1)
    p = load_predictor(reg.save(tmp_path / "cnn-reg"))
    for got, want in zip(p.predict(X, return_std=True), reg.predict(X, return_std=True)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_predictor_knows_the_estimators_parameters():
    """The parameter names the predictor accepts are those of the estimators' constructors."""
    import inspect

    from xasml.models.inference import CLASSIFIER, PARAMS, REGRESSOR, _DEFAULTS
    from xasml.models.local_nets import SpectrumClassifier, SpectrumEnsembleRegressor

    for name, cls in ((CLASSIFIER, SpectrumClassifier), (REGRESSOR, SpectrumEnsembleRegressor)):
        sig = inspect.signature(cls.__init__).parameters
        assert PARAMS[name] == set(sig) - {"self"}
        for k, v in _DEFAULTS.items():
            assert sig[k].default == v, (name, k)


def test_refused_folders_fall_back_to_the_estimator(tmp_path):
    """A folder the predictor does not take (here: a wrong layer width) is loaded by the estimator's
    own code, whose error names the folder (what the torch path always reported)."""
    import json
    import shutil

    from xasml.errors import DataError
    from xasml.models.bundle import SHIPPED_DIR, ModelBundle
    from xasml.models.inference import load_predictor

    d = tmp_path / "cn"
    shutil.copytree(SHIPPED_DIR / "Cu" / "cn", d)
    meta = json.loads((d / "estimator" / "estimator.json").read_text())
    meta["params"]["hidden"] = [90, 60, 21]
    (d / "estimator" / "estimator.json").write_text(json.dumps(meta))
    assert load_predictor(d / "estimator") is None
    with pytest.raises(DataError, match="do not fit together") as exc:
        ModelBundle.load(d)
    assert str(d / "estimator") in str(exc.value)


def test_one_file_commands_do_not_import_torch_or_sklearn(test_data):
    """What makes the shell answers fast (benchmarks/shell_speed.py): ``measure read`` and ``local
    predict --task all`` on one file import neither torch, scikit-learn nor xraydb's Python package
    (its SQLAlchemy), and give their usual answers; ``measure read`` not pandas either (``local
    predict`` reads the measured-standard library, a pandas table, for its evidence)."""
    import json
    import os
    import subprocess
    import sys

    REPO = Path(__file__).resolve().parents[1]
    xdi = str(test_data / "measure" / "Fe2O3_rt_01.xdi")
    heavy = ("torch", "sklearn", "pandas", "xraydb", "sqlalchemy", "pymatgen.analysis.chemenv")
    code = ("import json, sys; from xasml.cli import main; rc = main(sys.argv[1:]); sys.stdout.flush(); "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r} "
            f"or m.startswith('pymatgen.analysis.chemenv'))), file=sys.stderr); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for argv in (["measure", "read", "--json", xdi], ["local", "predict", "--task", "all", "--json", xdi]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, cwd=REPO)
        assert r.returncode == 0, r.stderr
        loaded = json.loads(r.stderr.strip().splitlines()[-1])
        if argv[0] == "local":  # the evidence library is a pandas table
            loaded = [m for m in loaded if m.split(".")[0] != "pandas"]
        assert loaded == [], argv
        out = json.loads(r.stdout)
        assert out["absorbing_element"] == "Fe"
        if argv[0] == "local":  # the shell's answer is the library's (shipped models change)
            from xasml.local.predict import predict_files

            want = predict_files([xdi], "oxidation")[0]["prediction"]
            assert out["oxidation"]["prediction"] == pytest.approx(want, abs=1e-6)
            assert 2.0 < out["oxidation"]["prediction"] < 3.3  # Fe2O3: Fe(III)
