"""``xasml curate``: streaming curation of site-spectrum databases (grid standardisation,
normalised-spectra selection, element filtering, exact / near duplicate removal, 3σ filter),
after Section III.B of the universal XAS latent-space paper."""

from xasml.curate.core import CurateOptions, curate_parquet, paper_elements, summary_markdown
from xasml.curate.inputs import convert_to_parquet, curate

__all__ = ["CurateOptions", "curate", "curate_parquet", "convert_to_parquet", "paper_elements", "summary_markdown"]
