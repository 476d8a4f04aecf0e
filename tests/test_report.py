"""Tests of xasml.report: every figure function writes a readable PNG, and Report writes valid
Markdown with tables, figure links and JSON blocks. Figures are drawn from real Ag K-edge FEFF10
spectra and real metric outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from xasml.evaluation.exploration import pca_kmeans
from xasml.evaluation.metrics import binary_metrics, grouped_binary_metrics
from xasml.report import Report
from xasml.report import figures as F
from xasml.report.markdown import format_cell, markdown_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ag(test_data):
    from xasml.io.feff import read_feff_compound
    from xasml.preprocess.grid import common_grid
    from xasml.spectrum import element_average

    avgs, y = [], []
    for d in sorted((test_data / "evaluation" / "feff10-ag").glob("amcsd-*")):
        avgs.append(element_average([s for s in read_feff_compound(d) if s.absorbing_element == "Ag"]))
        y.append(int(json.loads((d / "material.json").read_text())["topological"]))
    grid = common_grid(avgs, 56.0, 200)
    return grid.energy, grid.resample(avgs), np.array(y)


def _check_png(path: Path, min_size=(300, 300)) -> None:
    import matplotlib.image as mpimg

    path = Path(path)
    assert path.is_file() and path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.shape[0] >= min_size[1] and img.shape[1] >= min_size[0]
    assert img[..., :3].std() > 0.01, "blank image"
    assert not list(path.parent.glob(f".{path.name}.*.tmp")), "temporary file left behind"


def test_plot_roc_and_confusion_from_real_metrics(tmp_path, ag):
    _, X, y = ag
    res = pca_kmeans(X, y)
    m = res.metrics
    p = F.plot_roc({"Ag PCA + k-means": {**m["roc"], "auc": m["auc"]},
                    "one class (skipped)": {"fpr": [], "tpr": [], "auc": None}}, tmp_path / "roc.png",
                   title="ROC")
    _check_png(p)
    _check_png(F.plot_confusion(m["confusion"], ["trivial", "topological"], tmp_path / "cm.png", title="Ag"))
    _check_png(F.plot_confusion(np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]]), ["T4", "S5", "O6"],
                                tmp_path / "cm3.png", normalize=False))
    with pytest.raises(ValueError, match="shape"):
        F.plot_confusion([[1, 2]], ["a", "b"], tmp_path / "bad.png")


def test_plot_pca_kmeans_and_spectra(tmp_path, ag):
    energy, X, y = ag
    res = pca_kmeans(X, y)
    _check_png(F.plot_pca_kmeans(res, y, tmp_path / "pca.png", title="Ag K-edge"))
    # one retained component: the plot still shows PC1-PC2
    res1 = pca_kmeans(X, y, variance=0.3)
    assert res1.n_components == 1
    _check_png(F.plot_pca_kmeans(res1, y, tmp_path / "pca1.png"))
    _check_png(F.plot_spectra(energy, {"trivial": X[y == 0], "topological": X[y == 1]}, tmp_path / "sp.png",
                              title="Ag K-edge", max_per_class=3))
    with pytest.raises(ValueError, match="points per spectrum"):
        F.plot_spectra(energy[:10], {"trivial": X}, tmp_path / "bad.png")


def test_plot_periodic_table_and_bars(tmp_path):
    y = [1, 0, 1, 1, 0, 0]
    p = [1, 0, 0, 1, 1, 0]
    groups = [("Bi", "Se"), ("Ag", "I"), ("La", "Ag"), ("Bi", "Te"), ("O", "Cu"), ("Th", "O")]
    g = grouped_binary_metrics(y, p, groups)
    f1 = {el: v["per_class"]["topological"]["f1"] if v["n_pos"] else None for el, v in g.items()}
    counts = {el: v["n"] for el, v in g.items()}
    _check_png(F.plot_periodic_table(f1, tmp_path / "pt.png", title="F1 (topological)", counts=counts,
                                     label="F1"), min_size=(1000, 600))
    with pytest.raises(Exception, match="unknown element"):
        F.plot_periodic_table({"Xx": 0.5}, tmp_path / "bad.png")
    m = binary_metrics(y, p)["per_class"]
    table = {"PCA + k-means": m["topological"], "SVM": {"recall": 0.8, "precision": 0.7, "f1": None}}
    _check_png(F.plot_metric_bars(table, ["recall", "precision", "f1"], tmp_path / "bars.png", title="Topological",
                                  errors={"SVM": {"recall": 0.05}}, reference={"f1": 0.6}))
    # Carbone et al. Figure 3 style: elements as groups, classes as bars, pre-edge-only overlay
    full = {"Ti": {"T4": 0.92, "S5": 0.7, "O6": 0.96}, "Cu": {"T4": 0.9, "S5": 0.5, "O6": 0.95}}
    pre = {"Ti": {"T4": 0.9, "S5": 0.2, "O6": 0.9}, "Cu": {"T4": 0.4, "S5": 0.1}}
    _check_png(F.plot_metric_bars(full, ["T4", "S5", "O6"], tmp_path / "cw.png", overlay=pre,
                                  overlay_label="pre-edge only", ylabel="F1"))


def test_plot_embedding_parity_histogram_curves(tmp_path, ag):
    _energy, X, y = ag
    res = pca_kmeans(X, y)
    _check_png(F.plot_embedding(res.Z_plot, np.where(y == 1, "topological", "trivial"), tmp_path / "emb.png",
                                xlabel="PC1", ylabel="PC2"))
    _check_png(F.plot_embedding(np.c_[X[:, 20], X[:, 60]], ["a", "b", "c", "a", "b", "c", "a", "b", "c"],
                                tmp_path / "emb3.png"))
    with pytest.raises(ValueError):
        F.plot_embedding(X[:, :1], y, tmp_path / "bad.png")
    # parity: a real spectrum against its neighbour on the grid
    _check_png(F.plot_parity(X[:, 100], X[:, 101], tmp_path / "par.png", "μ at E (arb. units)",
                             "μ at E + 0.28 eV (arb. units)"))
    _check_png(F.plot_histogram(np.abs(np.diff(X, axis=1)).ravel(), tmp_path / "hist.png", "|Δμ| per step",
                                log=True))
    _check_png(F.plot_curves([0.28, 1, 2, 5], {"NN": ([0.9, 0.89, 0.88, 0.85], [0.01, 0.02, 0.02, 0.03]),
                                               "SVM": [0.8, 0.8, 0.78, None]},
                             tmp_path / "cur.png", "ΔE (eV)", "F1", reference={"SVM-type": 0.6}))


def test_markdown_table_formatting():
    rows = [{"model": "NN", "f1": 0.91234, "n": 120, "note": "a|b"}, {"model": "SVM", "f1": None, "n": 80}]
    t = markdown_table(rows)
    lines = t.strip().splitlines()
    assert lines[0] == "| model | f1 | n | note |"
    assert lines[1] == "| --- | ---: | ---: | --- |"
    assert lines[2] == "| NN | 0.912 | 120 | a\\|b |"
    assert lines[3] == "| SVM | — | 80 |  |"
    assert format_cell(float("nan")) == "—" and format_cell(np.float32(0.5), ".1f") == "0.5"
    assert markdown_table([]) == "_(empty table)_\n"


def test_report_writes_markdown(tmp_path, ag):
    import pandas as pd

    _, X, y = ag
    res = pca_kmeans(X, y)
    run = tmp_path / "run"
    fig = F.plot_pca_kmeans(res, y, run / "figures" / "pca Ag.png", title="Ag")
    rep = Report(run, "Topology exploration")
    rep.heading("Per-element PCA + k-means").paragraph("Andrejevic et al. 2022, Figure 1.")
    rep.table([{"element": "Ag", **{k: v for k, v in res.summary().items() if k in ("n", "n_components")}}])
    rep.table(pd.DataFrame({"metric": ["f1"], "value": [0.5]}), floatfmt=".2f", caption="A DataFrame")
    rep.figure(fig, "Ag PCA + k-means")                 # absolute / working-directory path
    rep.figure("figures/pca Ag.png", "same, relative")  # relative to the run folder
    rep.json_block(res.summary()).bullets(["one", "two"]).code("xasml topology explore", "bash")
    with pytest.warns(UserWarning, match="does not exist"):
        rep.figure("missing.png", "missing")
    out = rep.write()
    assert out == run / "report.md"
    text = out.read_text()
    assert text.startswith("# Topology exploration\n")
    assert "## Per-element PCA + k-means" in text
    assert "| element | n | n_components |" in text and "| Ag | 9 |" in text
    assert "| f1 | 0.50 |" in text and "*A DataFrame*" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links[:2] == ["figures/pca%20Ag.png", "figures/pca%20Ag.png"]
    assert (run / links[0].replace("%20", " ")).is_file()
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1)
    assert json.loads(block)["n"] == 9
    assert "- two\n" in text and "```bash\nxasml topology explore\n```" in text
    assert not list(run.glob(".report.md.*"))


# ---------------------------------------------------------------------------------------------
# per-element exploration report
# ---------------------------------------------------------------------------------------------

def test_element_matrices_from_padded_arrays(ag):
    from xasml.report.exploration import element_matrices

    _, X, y = ag
    # compounds 0..8 with Ag (Z=47) in slot 1 and a fake second absorber slot left empty
    X3 = np.zeros((9, 2, X.shape[1]))
    X3[:, 1] = X
    Z = np.zeros((9, 2), int)
    Z[:, 1] = 47
    mask = Z > 0
    out = element_matrices(X3, Z, mask, y)
    assert list(out) == ["Ag"]
    np.testing.assert_array_equal(out["Ag"][0], X)
    np.testing.assert_array_equal(out["Ag"][1], y)
    assert list(element_matrices(X3, Z, mask, y, symbols=False)) == [47]


def test_exploration_report_on_real_ag(tmp_path, ag):
    from xasml.report.exploration import classify_pattern, exploration_report

    energy, X, y = ag
    data = {"Ag": (X, y), "Tc": (X[:3], y[:3])}  # the second is too small and is listed as skipped
    path, summary = exploration_report(data, tmp_path / "ex", energies={"Ag": energy}, source="tests/data")
    assert path == tmp_path / "ex" / "report.md"
    assert [r["element"] for r in summary["rows"]] == ["Ag"] and "Tc" in summary["skipped"]
    assert summary["rows"][0]["pattern"] == "II" and summary["patterns"]["II"] == ["Ag"]
    assert summary["mean"]["topological"]["f1"] == pytest.approx(1.0)
    text = path.read_text()
    for fig in ("pca_kmeans_Ag.png", "confusion_Ag.png", "spectra_Ag.png", "periodic_f1_trivial.png",
                "mean_scores.png"):
        assert f"(figures/{fig})" in text
        _check_png(tmp_path / "ex" / "figures" / fig)
    assert "Skipped: Tc (n=3" in text
    assert json.loads((tmp_path / "ex" / "exploration.json").read_text())["rows"][0]["n"] == 9
    # pattern rules
    def fake(r0, r1):
        return {"balanced_accuracy": (r0 + r1) / 2,
                "per_class": {"trivial": {"recall": r0}, "topological": {"recall": r1}}}
    assert classify_pattern(fake(0.3, 1.0)) == "I"
    assert classify_pattern(fake(0.8, 0.85)) == "II"
    assert classify_pattern(fake(0.5, 0.6)) == "III"


def test_exploration_command_on_shared_feff10(tmp_path, shared_data):
    from xasml.report.exploration import main

    root = shared_data / "feff10-topology-v0"
    if not root.is_dir():
        pytest.skip("feff10-topology-v0 not in the shared data")
    assert main(["--data", str(root), "--out", str(tmp_path / "ex"), "--min-count", "12"]) == 0
    summary = json.loads((tmp_path / "ex" / "exploration.json").read_text())
    els = [r["element"] for r in summary["rows"]]
    assert {"O", "S", "Se"} <= set(els)
    for r in summary["rows"]:
        assert r["n"] >= 12 and r["explained_variance"] >= 0.8 - 1e-9
    assert (tmp_path / "ex" / "report.md").read_text().startswith("# Per-element PCA + k-means exploration")
