"""The one configuration system (xasml.config.XasmlConfig) and the capabilities built on it."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from xasml.config import XasmlConfig
from xasml.errors import DataError


class _Net(XasmlConfig):
    lr: float = Field(1e-4, gt=0, description="learning rate")
    hidden: list[int] = Field([256, 64], description="layer widths")


class _Cfg(XasmlConfig):
    seed: int = Field(0, description="the seed")
    network: _Net = Field(default_factory=_Net, description="network")
    fixed: dict[str, list[str]] = Field(default_factory=dict, description="free-form table")


def test_toml_and_json_files_give_the_same_config(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text("seed = 3\n[network]\nlr = 0.01\n")
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"seed": 3, "network": {"lr": 0.01}}))
    a, b = _Cfg.from_file(t), _Cfg.from_file(j)
    assert a == b and a.seed == 3 and a.network.lr == 0.01 and a.network.hidden == [256, 64]  # defaults kept
    assert a.to_dict() == {"seed": 3, "network": {"lr": 0.01, "hidden": [256, 64]}, "fixed": {}}


def test_unknown_key_names_the_file_and_the_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[network]\nepochz = 3\n")
    with pytest.raises(DataError) as e:
        _Cfg.from_file(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: field 'network.epochz': unknown option (known: hidden, lr)")
    assert "\n" not in msg
    with pytest.raises(DataError, match=r"^x.json: field 'sed': unknown option \(known: fixed, network, seed\)"):
        _Cfg.from_dict({"sed": 1}, "x.json")


def test_wrong_type_names_the_field(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"network": {"lr": "fast"}}))
    with pytest.raises(DataError, match=rf"^{f}: field 'network.lr': Input should be a valid number.*got \"fast\""):
        _Cfg.from_file(f)
    with pytest.raises(DataError, match=r"^c: field 'network.hidden\[1\]': .*integer"):
        _Cfg.from_dict({"network": {"hidden": [1, "x"]}}, "c")
    with pytest.raises(DataError, match=r"^c: field 'network.lr': Input should be greater than 0"):
        _Cfg.from_dict({"network": {"lr": -1}}, "c")
    with pytest.raises(DataError, match=r"^c: field 'seed': .*integer"):
        _Cfg.from_dict({"seed": 1.5}, "c")
    cfg = _Cfg.defaults()
    with pytest.raises(Exception):  # validate_assignment
        cfg.seed = "many"


def test_unparsable_and_missing_files(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("seed = = 3\n")
    with pytest.raises(DataError, match=rf"^{f}: cannot parse config"):
        _Cfg.from_file(f)
    with pytest.raises(DataError, match="config file not found"):
        _Cfg.from_file(tmp_path / "none.toml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="table/object at the top level"):
        _Cfg.from_file(tmp_path / "list.json")


def test_merged_merges_sections_and_replaces_free_tables():
    cfg = _Cfg.from_dict({"fixed": {"val": ["a"]}})
    new = cfg.merged({"network": {"lr": 0.5}, "fixed": {"test": ["b"]}})
    assert new.network.hidden == [256, 64] and new.network.lr == 0.5
    assert new.fixed == {"test": ["b"]} and cfg.network.lr == 1e-4  # replaced whole; the original untouched
    with pytest.raises(DataError, match="^cli: field 'network.nope'"):
        cfg.merged({"network": {"nope": 1}}, "cli")


def test_show_lists_every_option_with_value_and_description():
    lines = _Cfg.defaults().show().splitlines()
    assert lines == ["seed = 0    # the seed", "network.lr = 0.0001    # learning rate",
                     "network.hidden = [256, 64]    # layer widths", "fixed = {}    # free-form table"]
    assert _Cfg.descriptions()["network.lr"] == "learning rate"


def test_topology_config_keeps_names_defaults_and_errors(tmp_path):
    from xasml.topology.config import DEFAULTS, TopologyConfig, load_config

    assert DEFAULTS["network"]["lr"] == 1e-4 and DEFAULTS["grid"]["width"] == 56.0
    assert DEFAULTS["models"][0] == "topology_net" and DEFAULTS["split"]["fixed"] == {}
    assert load_config(None) == TopologyConfig.defaults().to_dict()
    f = tmp_path / "t.toml"
    f.write_text('models = ["topology_net", "net5"]\n[network_variants.net5]\nn_ensemble = 5\n')
    assert load_config(f)["network_variants"] == {"net5": {"n_ensemble": 5}}
    f.write_text('models = ["topology_nett"]\n')
    with pytest.raises(DataError, match=rf"^{f}: field 'models': unknown model 'topology_nett'"):
        load_config(f)
    f.write_text('[network_variants.v]\nlrr = 1\n')
    with pytest.raises(DataError, match=rf"^{f}: field 'network_variants.v.lrr': unknown network option"):
        load_config(f)
    f.write_text('[split]\nfractions = [0.5, 0.5]\n')
    with pytest.raises(DataError, match=rf"^{f}: field 'split.fractions': must be three positive numbers"):
        load_config(f)
    assert load_config(None, network={"epochs": 3})["network"]["epochs"] == 3


def test_forward_config_presets_file_and_show(tmp_path, capsys):
    from xasml.cli import main
    from xasml.forward.config import DEFAULTS, ForwardConfig, load_config

    assert DEFAULTS == ForwardConfig.defaults().to_dict() and DEFAULTS["model"]["lr"] == 3e-3
    paper = load_config(preset="paper")
    assert paper["preset"] == "paper" and paper["model"]["lr"] == 1e-4 and paper["cv"]["repeats"] == 5
    f = tmp_path / "f.toml"
    f.write_text('preset = "paper"\n[model]\nepochs = 7\n')
    cfg = load_config(f)
    assert cfg["preset"] == "paper" and cfg["model"]["epochs"] == 7 and cfg["model"]["batch_size"] == 32
    assert main(["forward", "run", "--show-config", "--config", str(f)]) == 0
    out = capsys.readouterr().out
    assert 'preset = "paper"' in out and "model.epochs = 7    # training epochs (paper: 512)" in out
    f.write_text('[model]\nschedule = "linear"\n')
    assert main(["forward", "run", "--config", str(f), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xasml: error: {f}: field 'model.schedule': Input should be 'constant', 'onecycle' or "
                          "'cosine'") and "\n" not in err
    f.write_text('preset = "slow"\n')
    with pytest.raises(DataError, match=rf"^{f}: field 'preset': unknown preset 'slow'"):
        load_config(f)
    f.write_text('[descriptor]\nn_g4 = 10\n')
    with pytest.raises(DataError, match=rf"^{f}: field 'descriptor.n_g4': must be a multiple"):
        load_config(f)


def test_latent_fit_config_file_options_and_show(tmp_path, capsys):
    from xasml.cli import main
    from xasml.latent.model import LatentConfig

    f = tmp_path / "l.json"
    f.write_text(json.dumps({"element": "Ni", "seed": 4, "rankaae": {"epochs": 5}, "data": str(tmp_path)}))
    assert main(["latent", "fit", "--show-config", "--config", str(f), "--epochs", "7", "--members", "3"]) == 0
    out = capsys.readouterr().out
    assert 'element = "Ni"    # absorbing element' in out and "seed = 4" in out
    assert 'rankaae = {"epochs": 7}' in out and 'ensemble = {"n_members": 3}' in out  # the command line wins
    assert LatentConfig.defaults().to_dict()["candidates"] == 1
    f.write_text(json.dumps({"rankaae": {"epochz": 5}}))
    assert main(["latent", "fit", "--config", str(f), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{f}: field 'rankaae.epochz': unknown RankAAE parameter" in err and "Traceback" not in err
    with pytest.raises(DataError, match="^x: field 'candidates': Input should be greater than or equal to 1"):
        LatentConfig.from_dict({"candidates": 0}, "x")


# -- --config / --show-config of every run-like command ---------------------------------------------


def _show_lines(capsys, argv) -> list[str]:
    from xasml.cli import main

    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def _assert_every_option_shown(lines, cls) -> None:
    for key, desc in cls.descriptions().items():
        assert any(ln.startswith(f"{key} = ") and ln.endswith(f"    # {desc}") for ln in lines), key
    assert len(lines) == len(cls.descriptions())


def _assert_one_line_error(capsys, argv, *parts) -> None:
    from xasml.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    for part in parts:
        assert part in err[0], (part, err[0])


def test_curate_show_config_file_and_command_line(tmp_path, capsys):
    from xasml.curate.core import PAPER_NEAR_DUPLICATE_ELEMENTS, CurateOptions

    lines = _show_lines(capsys, ["curate", "--show-config"])  # no INPUT nor --out needed
    _assert_every_option_shown(lines, CurateOptions)
    assert "n_points = 200" in lines[0] and any(ln.startswith("sigma = 3.0 ") for ln in lines)
    cfg = tmp_path / "c.toml"
    cfg.write_text('sigma = 2.5\nn_points = 100\nelements = ["cu", "Fe"]\n')
    out = "\n".join(_show_lines(capsys, ["curate", "--show-config", "--preset", "paper", "--config", str(cfg),
                                         "--n-points", "50", "--no-outliers"]))
    # defaults < --preset < --config < command line
    assert "sigma = 2.5 " in out and "n_points = 50 " in out and 'elements = ["Cu", "Fe"] ' in out
    assert "outliers = false " in out
    assert f"near_duplicate_elements = {json.dumps(list(PAPER_NEAR_DUPLICATE_ELEMENTS))} " in out
    out = "\n".join(_show_lines(capsys, ["curate", "--show-config", "--preset", "paper",
                                         "--near-duplicate-elements", "all"]))
    assert "near_duplicate_elements = null " in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"sigma": 2, "n_pointz": 3}')
    _assert_one_line_error(capsys, ["curate", "x.parquet", "--out", str(tmp_path / "o.parquet"), "--config", str(bad)],
                           str(bad), "'n_pointz'", "unknown option")
    bad.write_text('{"sigma": -1}')
    _assert_one_line_error(capsys, ["curate", "--show-config", "--config", str(bad)], str(bad), "'sigma'")
    bad.write_text('{"elements": ["Fe", "Qq"]}')
    _assert_one_line_error(capsys, ["curate", "--show-config", "--config", str(bad)], str(bad), "'elements'", "'Qq'")
    _assert_one_line_error(capsys, ["curate", "--out", str(tmp_path / "o.parquet")], "no input")


def test_simulate_feff_show_config_file_and_command_line(tmp_path, capsys):
    from xasml.simulate.config import SimulateFeffConfig

    lines = _show_lines(capsys, ["simulate", "feff", "--show-config"])  # no --out needed
    _assert_every_option_shown(lines, SimulateFeffConfig)
    out = "\n".join(lines)
    assert 'element = ["all"] ' in out and "timeout = 3600.0 " in out and 'preset = "v0" ' in out
    cfg = tmp_path / "s.toml"
    cfg.write_text('inputs = ["cifs"]\nelement = ["fe"]\nmax_sites = 4\ntimeout = 60\n[tag]\nFMS = "6.0 0"\n')
    out = "\n".join(_show_lines(capsys, ["simulate", "feff", "--show-config", "--config", str(cfg), "--timeout", "30",
                                         "--tag", "scf=4.5 0", "--amcsd-ids", "10022,amcsd-143", "--retry-failed"]))
    assert 'inputs = ["cifs"] ' in out and 'element = ["Fe"] ' in out and "max_sites = 4 " in out
    assert "timeout = 30.0 " in out and 'tag = {"FMS": "6.0 0", "SCF": "4.5 0"} ' in out
    assert "amcsd_ids = [10022, 143] " in out and "retry_failed = true " in out
    bad = tmp_path / "bad.toml"
    bad.write_text("timeoutt = 5\n")
    _assert_one_line_error(capsys, ["simulate", "feff", "--config", str(bad), "--out", str(tmp_path / "o")],
                           str(bad), "'timeoutt'", "unknown option")
    bad.write_text('element = ["Xx"]\n')
    _assert_one_line_error(capsys, ["simulate", "feff", "--show-config", "--config", str(bad)], str(bad), "'element'")
    _assert_one_line_error(capsys, ["simulate", "feff", "--amcsd-ids", "1a", "--out", str(tmp_path / "o")],
                           "--amcsd-ids", "'1a'")
    _assert_one_line_error(capsys, ["simulate", "feff", "--amcsd-ids", "1"], "--out is required")


def test_show_config_shows_command_line_options_of_forward_and_topology(capsys):
    out = "\n".join(_show_lines(capsys, ["forward", "run", "--show-config", "--seed", "3", "--epochs", "7",
                                         "--cv-repeats", "0", "--no-analysis", "--data", "/d", "--limit", "5"]))
    for line in ("seed = 3 ", "model.epochs = 7 ", "cv.repeats = 0 ", "analysis.enabled = false ",
                 'data.path = "/d" ', "data.limit = 5 "):
        assert line in out, line
    out = "\n".join(_show_lines(capsys, ["topology", "run", "--show-config", "--seed", "5", "--data", "/d"]))
    assert "seed = 5 " in out and 'data.path = "/d" ' in out


@pytest.mark.parametrize("argv", [["curate"], ["simulate", "feff"], ["topology", "run"], ["forward", "run"],
                                  ["latent", "fit"], ["local", "run"]], ids=" ".join)
def test_show_config_into_a_closed_pipe_is_quiet(argv):
    """``xasml ... --show-config | head``: the reader is gone before anything is written; no traceback."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # nobody will read: the first write fails with EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "xasml.cli", *argv, "--show-config"], stdout=w,
                           stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    err = p.stderr.decode()
    assert "Traceback" not in err and "BrokenPipe" not in err and err == "", err
    assert p.returncode == 141
