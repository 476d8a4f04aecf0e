"""XANES-bird helpers: periodic-table sections, oxidation labels, the UMAP call on real spectra."""

from __future__ import annotations

import numpy as np
import pytest

from xasml.evaluation.bird import element_group, oxidation_label, xanes_bird


def test_sections_and_labels():
    assert element_group("Cu") == "3d transition metals" and element_group("O") == "nonmetals"
    assert element_group("Cl") == "halogens" and element_group("Og") == "other"
    assert [oxidation_label(v) for v in (2, -2, 0, None, float("nan"))] == ["+2", "-2", "0", "None", "None"]


def test_bird_embeds_real_spectra(test_data):
    pytest.importorskip("umap")
    from xasml.datasets.sites import build_site_table

    frame, _ = build_site_table([test_data / "local"], ["Cu"])
    grid = np.linspace(8985, 9020, 50)
    X = np.stack([np.interp(grid, e, m) for e, m in zip(frame["energy"], frame["mu"])])
    X = np.repeat(X, 3, axis=0) + np.random.default_rng(0).normal(0, 0.01, (3 * len(X), X.shape[1]))
    out = xanes_bird(X, ["Cu"] * len(X), [2] * len(X), n_neighbors=5, max_spectra=10)
    assert out["embedding"].shape == (10, 2) and np.isfinite(out["embedding"]).all()
    assert set(out["group"]) == {"3d transition metals"} and set(out["oxidation"]) == {"+2"}
