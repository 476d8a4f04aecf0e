"""The folder watch of ``xasml serve``: 50 scans written into a watched folder (some in chunks, as
an acquisition program writes them; some malformed) each appear exactly once, the good ones with
their answer and the bad ones with their one-line error; a restart neither repeats nor loses any."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from serve_helpers import wait_for

pytest.importorskip("watchfiles", reason="watchfiles not installed (pip install 'xasml[serve]')")

from xasml.serve.service import ServeConfig, ServeService  # noqa: E402

GOOD = [("measure", "Fe2O3_rt_01.xdi"), ("io/xdi", "CuO_tenorite_13K_01.xdi"), ("io/xdi", "cu_metal_rt.xdi")]
BAD = [f"bad_{i:02d}.xdi" for i in range(12, 22)]  # truncated rows, NaN, text in numbers, broken headers, no edge


def _write_in_chunks(src: Path, dst: Path, n_chunks: int, pause: float = 0.1) -> None:
    data = src.read_bytes()
    step = len(data) // n_chunks + 1
    with open(dst, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i:i + step])
            fh.flush()
            time.sleep(pause)


def _start(store: Path, watch: Path) -> ServeService:
    svc = ServeService(ServeConfig(watch=watch, store=store, settle=0.6))
    svc.start(warm=False)
    wait_for(svc.watcher.ready.is_set, 30, what="the watch to start")
    return svc


def _by_name(svc: ServeService) -> dict[str, dict]:
    return {Path(e["path"]).name: e for e in svc.store.entries()}


def test_watch_fifty_scans_chunks_malformed_and_restart(tmp_path, test_data):
    watch, store = tmp_path / "beamline", tmp_path / "store"
    watch.mkdir()
    svc = _start(store, watch)
    try:
        expected_good, expected_bad = {}, {}
        for i in range(40):
            sub, name = GOOD[i % len(GOOD)]
            dst = watch / f"scan_{i:03d}_{name}"
            if i % 3 == 0:   # written in 3-6 pieces, 0.1 s apart
                _write_in_chunks(test_data / sub / name, dst, 3 + i % 4)
            elif i % 7 == 1:  # written to a temporary name, then renamed
                tmp = watch / f".{dst.name}.part"
                shutil.copyfile(test_data / sub / name, tmp)
                tmp.rename(dst)
            else:
                shutil.copyfile(test_data / sub / name, dst)
            expected_good[dst.name] = name
        for name in BAD:
            shutil.copyfile(test_data / "io" / "xdi" / "baddata" / name, watch / f"bad_{name}")
            expected_bad[f"bad_{name}"] = name
        wait_for(lambda: svc.store.count() >= 50, 240, interval=0.5, what="50 results in the store")
        time.sleep(1.5)  # nothing more must come
        got = _by_name(svc)
        assert sorted(got) == sorted(list(expected_good) + list(expected_bad))
        for fname, src in expected_good.items():
            e = got[fname]
            assert e["analyses"] == 1, f"{fname} analysed {e['analyses']} times (read half-written?)"
            assert e["status"] == "ok", e["result"].get("error")
            ox = e["result"]["spectra"][0]["answers"]["oxidation"]
            if src.startswith("Fe2O3"):
                assert 2.3 < ox["prediction"] < 3.3 and ox["std"] > 0
            elif src.startswith("CuO"):
                assert 1.4 < ox["prediction"] < 2.6
            else:
                assert -0.5 < ox["prediction"] < 1.2
        for fname in expected_bad:
            e = got[fname]
            assert e["analyses"] == 1 and e["status"] == "error"
            err = e["result"]["error"]
            assert "\n" not in err and fname in err and len(err) < 400
        first = {k: (e["id"], e["key"], e["updated"]) for k, e in got.items()}
    finally:
        svc.stop()

    # while the server is down: two new scans, one scan grows (a re-written file); then a restart
    shutil.copyfile(test_data / "measure" / "Fe2O3_rt_01.xdi", watch / "late_1.xdi")
    shutil.copyfile(test_data / "io" / "xdi" / "CuO_tenorite_13K_01.xdi", watch / "late_2.xdi")
    grown = watch / "scan_001_CuO_tenorite_13K_01.xdi"
    with open(grown, "ab") as fh:
        fh.write(grown.read_bytes().splitlines(keepends=True)[-1])  # one more data row
    svc = _start(store, watch)
    try:
        wait_for(lambda: svc.store.count() >= 52 and _by_name(svc)[grown.name]["analyses"] == 2, 120,
                 what="the two new scans and the grown one")
        time.sleep(1.5)
        got = _by_name(svc)
        assert len(got) == 52
        for k, (entry_id, key, updated) in first.items():
            e = got[k]
            assert e["id"] == entry_id
            if k == grown.name:
                assert e["key"] != key and e["analyses"] == 2 and e["status"] == "ok"
            else:  # not analysed again
                assert (e["key"], e["updated"], e["analyses"]) == (key, updated, 1), k
        assert got["late_1.xdi"]["status"] == "ok" and got["late_2.xdi"]["status"] == "ok"
    finally:
        svc.stop()


def test_watch_refuses_links_out_of_the_folder(tmp_path, test_data):
    """A symbolic link in the watched folder to a file outside it is never read."""
    watch, store = tmp_path / "beamline", tmp_path / "store"
    watch.mkdir()
    outside = tmp_path / "private.xdi"
    shutil.copyfile(test_data / "measure" / "Fe2O3_rt_01.xdi", outside)
    svc = _start(store, watch)
    events = []
    svc.subscribe(events.append)
    try:
        (watch / "link.xdi").symlink_to(outside)
        shutil.copyfile(test_data / "measure" / "Fe2O3_rt_01.xdi", watch / "real.xdi")
        wait_for(lambda: svc.store.count() >= 1, 60, what="the real file")
        time.sleep(1.5)
        names = [Path(e["path"]).name for e in svc.store.entries()]
        assert names == ["real.xdi"]
        assert any(ev.get("type") == "status" and "outside the watched folder" in ev["message"] for ev in events)
    finally:
        svc.stop()
