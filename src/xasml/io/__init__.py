"""Readers and writers: FEFF ``xmu.dat``, XDI, Athena projects, column files, spectrum matrices, Materials Project documents,
structures.

:func:`read_spectrum` reads any supported spectrum file, recognising the format by content.
"""

from xasml.io.athena import read_athena, read_athena_project
from xasml.io.columns import read_columns
from xasml.io.feff import read_feff_compound, read_feff_xmu
from xasml.io.matrix import read_spectrum_matrix
from xasml.io.mp import read_mp_xas_document
from xasml.io.nexus import read_nexus_table
from xasml.io.reader import detect_format, read_spectrum
from xasml.io.rfxas import read_rfxas_csv
from xasml.io.xdi import XDIFile, XDIWarning, read_xdi, read_xdi_table, write_xdi

__all__ = ["read_spectrum", "detect_format", "read_feff_xmu", "read_feff_compound", "read_xdi",
           "read_xdi_table", "write_xdi", "XDIFile", "XDIWarning", "read_mp_xas_document", "read_rfxas_csv",
           "read_athena", "read_athena_project", "read_columns", "read_spectrum_matrix", "read_nexus_table"]
