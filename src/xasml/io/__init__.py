"""Readers and writers: FEFF ``xmu.dat``, XDI, Athena projects, column and beamline files, HDF5/NeXus scans,
spectrum matrices, Materials Project documents, structures.

:func:`read_spectrum` reads any supported spectrum file, recognising the format by content.

The names below are imported from their modules on first use (PEP 562 module ``__getattr__``,
:func:`xasml._lazy.lazy_exports`): ``from xasml.io import read_xdi`` works as before, but
importing one reader (``xasml.io.xdi``) no longer imports every other one (the Materials Project
reader loads pydantic), which a one-file ``xasml measure read`` does not need.
"""

from xasml._lazy import lazy_exports

#: public name -> module that defines it
_EXPORTS = {
    "read_athena": "athena", "read_athena_project": "athena",
    "read_columns": "columns",
    "read_feff_compound": "feff", "read_feff_xmu": "feff",
    "read_spectrum_matrix": "matrix",
    "read_mp_xas_document": "mp",
    "detect_format": "reader", "read_spectrum": "reader",
    "read_rfxas_csv": "rfxas",
    "read_nexus_table": "nexus",
    "XDIFile": "xdi", "XDIWarning": "xdi", "read_xdi": "xdi", "read_xdi_table": "xdi", "write_xdi": "xdi",
}

__all__ = ["read_spectrum", "detect_format", "read_feff_xmu", "read_feff_compound", "read_xdi",
           "read_xdi_table", "write_xdi", "XDIFile", "XDIWarning", "read_mp_xas_document", "read_rfxas_csv",
           "read_athena", "read_athena_project", "read_columns", "read_spectrum_matrix", "read_nexus_table"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
