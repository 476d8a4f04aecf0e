"""A small Markdown report writer for run folders (GitHub-renderable, no HTML needed).

Example
-------
>>> rep = Report("runs/topology-001", "Topology indicator")      # doctest: +SKIP
>>> rep.heading("Test metrics")                                  # doctest: +SKIP
>>> rep.table([{"model": "NN", "f1": 0.91}, {"model": "SVM", "f1": 0.87}])   # doctest: +SKIP
>>> rep.figure(plot_roc(curves, "runs/topology-001/roc.png"), "ROC curves")  # doctest: +SKIP
>>> rep.write()                                                  # doctest: +SKIP
PosixPath('runs/topology-001/report.md')
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xasml.utils import _json_default, atomic_write_text

__all__ = ["Report", "format_cell", "markdown_table"]


def format_cell(value: Any, floatfmt: str = ".3f") -> str:
    """Render one table cell: floats with ``floatfmt``, None/NaN as an em dash, pipes escaped.

    Parameters
    ----------
    value : Any
        Cell value.
    floatfmt : str
        Format specification of floats (e.g. ``".3f"``, ``".2e"``).

    Returns
    -------
    str
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return format(value, floatfmt)
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ", ".join(format_cell(v, floatfmt) for v in value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def markdown_table(rows, columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    """Render rows as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    rows : list of dict or pandas.DataFrame
        One dict per row (missing keys give empty cells), or a DataFrame (its index is dropped
        unless it is named; a named index becomes the first column).
    columns : sequence of str, optional
        Columns to show and their order; default: keys in order of first appearance.
    floatfmt : str
        Format of float cells.

    Returns
    -------
    str
        The table (ending with a newline). Numeric columns are right-aligned.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(rows, pd.DataFrame):
        df = rows.reset_index() if rows.index.name is not None else rows
        rows = df.to_dict(orient="records")
    rows = list(rows)
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("rows: expected a list of dicts or a pandas DataFrame")
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    columns = [str(c) for c in columns]
    if not columns:
        return "_(empty table)_\n"

    def numeric(c):
        vals = [r.get(c) for r in rows if r.get(c) is not None]
        return bool(vals) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in vals)

    align = ["---:" if numeric(c) else "---" for c in columns]
    lines = ["| " + " | ".join(format_cell(c) for c in columns) + " |",
             "| " + " | ".join(align) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(format_cell(r.get(c, ""), floatfmt) if c in r else "" for c in columns)
                     + " |")
    return "\n".join(lines) + "\n"


class Report:
    """Build a Markdown report piece by piece and write it to ``<folder>/report.md``.

    Parameters
    ----------
    folder : str or Path
        Run folder; figures are linked relative to it. Created on :meth:`write` if missing.
    title : str
        Level-1 heading of the report.
    filename : str
        Name of the Markdown file inside ``folder``.

    Notes
    -----
    Every method returns the report itself, so calls can be chained.
    """

    def __init__(self, folder: str | Path, title: str, filename: str = "report.md"):
        self.folder = Path(folder)
        self.title = str(title)
        self.filename = filename
        self._blocks: list[str] = [f"# {self.title}\n"]

    # ---- building blocks -----------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> Report:
        """Add a heading.

        Parameters
        ----------
        text : str
            Heading text.
        level : int
            1 (title) to 6; sections are 2.

        Raises
        ------
        ValueError
            If ``level`` is outside 1..6.
        """
        if not 1 <= int(level) <= 6:
            raise ValueError(f"heading level must be 1..6, got {level}")
        self._blocks.append(f"{'#' * int(level)} {text}\n")
        return self

    def paragraph(self, text: str) -> Report:
        """Add a paragraph.

        Parameters
        ----------
        text : str
            Markdown text (inline formatting, links and math are passed through).
        """
        self._blocks.append(str(text).strip() + "\n")
        return self

    def bullets(self, items: Sequence[str]) -> Report:
        """Add a bulleted list.

        Parameters
        ----------
        items : sequence of str
            One Markdown line per bullet.
        """
        self._blocks.append("".join(f"- {it}\n" for it in items))
        return self

    def table(self, rows, columns: Sequence[str] | None = None, floatfmt: str = ".3f",
              caption: str | None = None) -> Report:
        """Add a table, optionally preceded by an italic caption.

        Parameters
        ----------
        rows : list of dict or pandas.DataFrame
            See :func:`markdown_table`.
        columns : sequence of str, optional
            Columns and their order (default: all keys in order of appearance).
        floatfmt : str
            Format of float cells, e.g. ``".3f"``.
        caption : str, optional
            Shown in italics above the table.
        """
        block = (f"*{caption}*\n\n" if caption else "") + markdown_table(rows, columns, floatfmt)
        self._blocks.append(block)
        return self

    def figure(self, path_png: str | Path, caption: str) -> Report:
        """Add an image with a caption; the link is relative to the report folder.

        Parameters
        ----------
        path_png : str or Path
            The PNG, either relative to the report folder or an absolute / working-directory path
            inside or outside it. A missing file gives a warning (the link would be broken).
        caption : str
            Shown as alt text and as an italic line below the image.
        """
        p = Path(path_png)
        candidates = [p] if p.is_absolute() else [self.folder / p, p]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            warnings.warn(f"Report.figure: {path_png} does not exist; the link in the report will be broken",
                          stacklevel=2)
            found = candidates[0]
        rel = os.path.relpath(Path(found).resolve(), self.folder.resolve())
        rel = Path(rel).as_posix().replace(" ", "%20")
        alt = str(caption).replace("[", "(").replace("]", ")").replace("\n", " ")
        self._blocks.append(f"![{alt}]({rel})\n\n*{caption}*\n")
        return self

    def json_block(self, obj: Any) -> Report:
        """Add a fenced JSON code block.

        Parameters
        ----------
        obj : Any
            JSON-serialisable object; numpy scalars and arrays, paths and sets are converted.
        """
        self._blocks.append("```json\n" + json.dumps(obj, indent=2, default=_json_default) + "\n```\n")
        return self

    def code(self, text: str, language: str = "") -> Report:
        """Add a fenced code block (e.g. the command that produced the run).

        Parameters
        ----------
        text : str
            Code.
        language : str
            Language tag for highlighting (``"bash"``, ``"toml"``, ...).
        """
        self._blocks.append(f"```{language}\n{str(text).rstrip()}\n```\n")
        return self

    # ---- output ----------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The report as one Markdown string."""
        return "\n".join(self._blocks)

    def write(self) -> Path:
        """Write ``<folder>/<filename>`` atomically (temporary file, then rename).

        Returns
        -------
        Path
            The Markdown file.
        """
        return atomic_write_text(self.folder / self.filename, self.to_markdown())

    def __repr__(self) -> str:
        return f"Report({str(self.folder)!r}, {self.title!r}, {len(self._blocks)} blocks)"
