"""Readers and writers: FEFF ``xmu.dat``, XDI, Materials Project documents, structures."""

from xasml.io.feff import read_feff_compound, read_feff_xmu
from xasml.io.xdi import XDIFile, XDIWarning, read_xdi, read_xdi_table

__all__ = ["read_feff_xmu", "read_feff_compound", "read_xdi", "read_xdi_table", "XDIFile", "XDIWarning"]
