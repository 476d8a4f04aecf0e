"""The installed package imports from any folder, even one that holds a checkout named ``xasml``."""

from __future__ import annotations

import subprocess
import sys


def test_import_from_a_folder_holding_a_clone_named_xasml(tmp_path):
    clone = tmp_path / "xasml"  # what `git clone .../xasml` leaves: a folder without __init__.py
    (clone / "src" / "xasml").mkdir(parents=True)
    (clone / "README.md").write_text("a clone\n")
    res = subprocess.run([sys.executable, "-c", "import xasml, xasml.cli; print(xasml.__file__, xasml.__version__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    file, version = res.stdout.split()
    assert file.endswith("__init__.py") and not file.startswith(str(clone)) and version
