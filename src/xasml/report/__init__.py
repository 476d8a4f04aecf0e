"""Report writing: Markdown reports (:mod:`xasml.report.markdown`) and figures
(:mod:`xasml.report.figures`, matplotlib Agg, imported on demand so the package stays light)."""

from xasml.report.markdown import Report

__all__ = ["Report"]
