"""Materials Project XAS documents (the ``XASDoc`` of emmet / ``MPRester().materials.xas``).

One document holds one computed spectrum of one absorbing element at one edge of one material,
as JSON::

    {"material_id": "mp-1022728", "spectrum_id": "mp-1022728-XANES-Cu-K",
     "absorbing_element": "Cu", "edge": "K", "spectrum_type": "XANES",
     "spectrum": {"@module": "pymatgen.analysis.xas.spectrum", "@class": "XAS",
                  "x": [...eV...], "y": [...], "structure": {...}, "absorbing_element": "Cu",
                  "edge": "K", "spectrum_type": "XANES", "absorbing_index": null},
     "structure": {...}, "formula_pretty": "CuO", "task_ids": [...], ...}

The Materials Project computes one FEFF spectrum per symmetry-inequivalent site and publishes the
multiplicity-weighted element average (pymatgen ``site_weighted_spectrum``; ``absorbing_index``
is then ``null``); a material with a single inequivalent site keeps that site's index.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xasml.errors import SpectrumError
from xasml.spectrum import KNOWN_EDGES, Spectrum, normalize_element

__all__ = ["read_mp_xas_document", "mp_document_to_spectrum", "MPXASDocument", "MPXASSpectrum"]

_EDGES = set(KNOWN_EDGES) | {"L2,3"}


def _element_value(v):
    """Accept ``"Cu"`` or a serialised pymatgen ``Element`` (``{"@class": "Element", "element": "Cu"}``)."""
    if isinstance(v, dict) and "element" in v:
        return v["element"]
    return v


class MPXASSpectrum(BaseModel):
    """The ``spectrum`` field of an XAS document (a serialised pymatgen ``XAS``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    x: list[float] = Field(..., min_length=2, description="absolute photon energy, eV")
    y: list[float] = Field(..., min_length=2, description="absorption (normalised by FEFF)")
    structure: dict[str, Any] | None = Field(None, description="pymatgen Structure.as_dict()")
    absorbing_element: str | None = None
    absorbing_index: int | None = Field(None, ge=0)
    edge: str | None = None
    spectrum_type: str | None = None

    @field_validator("absorbing_element", mode="before")
    @classmethod
    def _element_obj(cls, v):
        return _element_value(v)


class MPXASDocument(BaseModel):
    """Validated XAS document of the Materials Project API (fields this package uses)."""

    model_config = ConfigDict(extra="allow")

    spectrum: MPXASSpectrum
    absorbing_element: str
    edge: str
    spectrum_type: str = "XANES"
    material_id: str | None = None
    spectrum_id: str | None = None
    structure: dict[str, Any] | None = None
    task_ids: list[str] | None = None
    formula_pretty: str | None = None

    @field_validator("edge")
    @classmethod
    def _edge(cls, v: str) -> str:
        v = str(v).strip().upper()
        if v not in _EDGES:
            raise ValueError(f"unknown edge {v!r}: expected K, L2, L3, L2,3, ...")
        return v

    @field_validator("absorbing_element", mode="before")
    @classmethod
    def _element(cls, v) -> str:
        v = _element_value(v)
        try:
            return normalize_element(v)
        except SpectrumError:
            raise ValueError(f"unknown element {v!r}: expected a chemical symbol such as 'Cu'") from None

    @field_validator("material_id", mode="before")
    @classmethod
    def _mpid(cls, v):
        return None if v is None else str(v)


def _validation_message(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"{err['msg']}{more}", loc


def mp_document_to_spectrum(doc: dict[str, Any], source: str | None = None,
                            index: int | None = None) -> Spectrum:
    """Convert one XAS document (a dict) to a :class:`~xasml.spectrum.Spectrum`.

    Parameters
    ----------
    doc : dict
        The document, as the MP API returns it (``MPRester().materials.xas.search``).
    source : str, optional
        The file it came from, for error messages.
    index : int, optional
        Position of the document in a list, for error messages.

    Returns
    -------
    Spectrum
        ``energy`` = ``spectrum.x`` (eV), ``mu`` = ``spectrum.y``; ``kind="average"`` (the
        document's spectrum stands for every site of the absorbing element);
        ``multiplicity`` = number of absorbing-element sites in the structure (1 without a
        structure); ``absorbing_index`` from the spectrum (``None`` for site averages);
        ``metadata``: ``spectrum_id``, ``spectrum_type``, ``task_ids``, ``formula_pretty``,
        ``structure`` (pymatgen ``Structure`` or None), ``format="mp"``.

    Raises
    ------
    SpectrumError
        Naming the field (e.g. ``spectrum.x``) when a required field is missing or invalid,
        when the spectrum's own element/edge contradicts the document's, when the structure is
        invalid (non-finite or degenerate cell, partly occupied site), or when the spectrum
        itself is invalid (non-increasing energies, NaN, ...).
    """
    where = f"document {index}: " if index is not None else ""
    if not isinstance(doc, dict):
        raise SpectrumError(f"{where}expected a JSON object (an XAS document), got {type(doc).__name__}",
                            source=source)
    try:
        d = MPXASDocument.model_validate(doc)
    except ValidationError as exc:
        msg, loc = _validation_message(exc)
        raise SpectrumError(f"{where}{msg}", source=source, field=loc) from None
    except RecursionError:
        raise SpectrumError(f"{where}document nested too deeply", source=source) from None
    sp = d.spectrum
    if len(sp.x) != len(sp.y):
        raise SpectrumError(f"{where}spectrum.x has {len(sp.x)} values but spectrum.y has {len(sp.y)}",
                            source=source, field="spectrum.y")
    if sp.absorbing_element is not None and normalize_element(sp.absorbing_element, source) != d.absorbing_element:
        raise SpectrumError(f"{where}spectrum.absorbing_element {sp.absorbing_element!r} differs from "
                            f"absorbing_element {d.absorbing_element!r}", source=source,
                            field="spectrum.absorbing_element")
    if sp.edge is not None and str(sp.edge).upper() != d.edge:
        raise SpectrumError(f"{where}spectrum.edge {sp.edge!r} differs from edge {d.edge!r}", source=source,
                            field="spectrum.edge")
    if d.edge == "L2,3":
        raise SpectrumError(f"{where}merged L2,3 spectra are not supported: one edge per spectrum",
                            source=source, field="edge")
    structure = None
    struct_dict = d.structure or sp.structure
    if struct_dict is not None:
        from pymatgen.core import Structure

        from xasml.errors import DataError
        from xasml.io.structures import check_structure

        try:
            structure = Structure.from_dict(struct_dict)
        except Exception as exc:  # pymatgen raises many types on malformed dicts
            msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise SpectrumError(f"{where}invalid structure: {msg}", source=source, field="structure") from None
        try:
            check_structure(structure, ordered=True)
        except DataError as exc:
            raise SpectrumError(f"{where}{exc}", source=source, field="structure") from None
    multiplicity = 1
    if structure is not None:
        multiplicity = max(1, sum(1 for site in structure if site.specie.symbol == d.absorbing_element))
        if sp.absorbing_index is not None and sp.absorbing_index >= len(structure):
            raise SpectrumError(f"{where}absorbing_index {sp.absorbing_index} out of range for a structure "
                                f"of {len(structure)} sites", source=source, field="spectrum.absorbing_index")
    label = d.spectrum_id or d.material_id
    try:
        return Spectrum(energy=sp.x, mu=sp.y, absorbing_element=d.absorbing_element, edge=d.edge,
                        material_id=d.material_id, absorbing_index=sp.absorbing_index,
                        multiplicity=multiplicity, source=source if index is None else f"{source}[{index}]",
                        kind="average",
                        metadata={"format": "mp", "spectrum_id": d.spectrum_id, "spectrum_type": d.spectrum_type,
                                  "task_ids": d.task_ids, "formula_pretty": d.formula_pretty,
                                  "structure": structure, "label": label})
    except SpectrumError as exc:
        field = {"energy": "spectrum.x", "mu": "spectrum.y"}.get(exc.field or "", exc.field)
        raise SpectrumError(f"{where}{exc.message}", source=source, field=field) from None


def read_mp_xas_document(path_or_dict: str | Path | dict | list) -> Spectrum | list[Spectrum]:
    """Read Materials Project XAS document(s) from a JSON file or an already-parsed object.

    Parameters
    ----------
    path_or_dict : str, Path, dict or list
        A JSON file holding one document or a list of documents (also ``{"data": [...]}``, the
        raw API response), or the parsed dict/list itself.

    Returns
    -------
    Spectrum or list of Spectrum
        One spectrum for one document, a list for a list (see :func:`mp_document_to_spectrum`).

    Raises
    ------
    SpectrumError
        If the file is missing, not UTF-8, not valid JSON (line named; also too deeply nested
        or an integer too long to convert), or a document is invalid (field named, e.g.
        ``spectrum.x``; list position named).
    """
    source = None
    obj = path_or_dict
    if isinstance(path_or_dict, (str, Path)):
        path = Path(path_or_dict)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpectrumError("file not found", source=source) from None
        except IsADirectoryError:
            raise SpectrumError("is a folder, expected a JSON file of XAS documents", source=source) from None
        except UnicodeDecodeError as exc:
            raise SpectrumError(f"not UTF-8 text (invalid byte at offset {exc.start}); expected a JSON file",
                                source=source) from None
        except OSError as exc:
            raise SpectrumError(f"cannot read: {exc.strerror or exc}", source=source) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpectrumError(f"invalid JSON: {exc.msg} (column {exc.colno})", source=source,
                                line=exc.lineno) from None
        except RecursionError:
            raise SpectrumError("JSON nested too deeply; expected XAS documents (a few levels deep)",
                                source=source) from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            msg = ("an integer has more digits than Python converts (4300)" if "digits" in str(exc)
                   else str(exc).splitlines()[0][:120])
            raise SpectrumError(f"invalid JSON value: {msg}; expected ordinary numbers", source=source) from None
    if isinstance(obj, dict) and "data" in obj and "spectrum" not in obj and isinstance(obj["data"], list):
        obj = obj["data"]
    if isinstance(obj, list):
        if not obj:
            raise SpectrumError("empty list: no XAS documents", source=source)
        return [mp_document_to_spectrum(d, source=source, index=i) for i, d in enumerate(obj)]
    return mp_document_to_spectrum(obj, source=source)
