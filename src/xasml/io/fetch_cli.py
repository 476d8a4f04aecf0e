"""``xasml fetch``: download computed spectra from online databases.

``xasml fetch mp --material-ids mp-1022728 mp-1005792 --element Cu --edge K --out DIR`` asks the
Materials Project API (through ``mp_api.client.MPRester``, the optional extra ``xasml[mp]``) for
the XAS documents of the given materials and writes one JSON file per document,
``DIR/<spectrum_id>.json``, in the API's own document shape (readable with
:func:`xasml.io.mp.read_mp_xas_document`). The API key comes from ``--api-key`` or the
environment variable ``MP_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any, Sequence

from xasml.errors import MissingExtraError, XasmlError

__all__ = ["add_parser", "fetch_mp", "FetchError"]

_MPID_RE = re.compile(r"^(mp|mvc)-\d+$")


class FetchError(XasmlError):
    """A download could not be made: no API key, bad request, network or server failure."""


def _mprester_class():
    """Return ``mp_api.client.MPRester`` (imported lazily; tests replace this function)."""
    try:
        from mp_api.client import MPRester
    except ImportError:
        raise MissingExtraError("mp-api", "mp") from None
    return MPRester


def _search_kwargs(element: str | None, edge: str | None, spectrum_type: str | None) -> dict[str, Any]:
    """Search arguments, as the enum types mp_api expects when emmet provides them."""
    kw: dict[str, Any] = {}
    edge_cls = type_cls = None
    try:  # emmet-core >= 0.85
        from emmet.core.types.enums import XasEdge as edge_cls, XasType as type_cls  # noqa: N813
    except ImportError:
        try:
            from emmet.core.xas import Edge as edge_cls, Type as type_cls  # noqa: N813
        except ImportError:
            pass
    if element:
        from pymatgen.core.periodic_table import Element

        kw["absorbing_element"] = Element(element)
    if edge:
        kw["edge"] = edge_cls(edge) if edge_cls is not None else edge
    if spectrum_type:
        kw["spectrum_type"] = type_cls(spectrum_type) if type_cls is not None else spectrum_type
    return kw


def _doc_to_json(doc: Any) -> dict[str, Any]:
    """An API document (pydantic model or dict) as plain JSON types (pymatgen objects as dicts)."""
    from monty.json import jsanitize

    if hasattr(doc, "model_dump"):
        doc = doc.model_dump()
    elif hasattr(doc, "dict") and not isinstance(doc, dict):
        doc = doc.dict()
    try:
        return jsanitize(doc, strict=True, enum_values=True)
    except (AttributeError, TypeError):  # an object without as_dict(): keep its text
        return jsanitize(doc, strict=False, enum_values=True)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._,-]+", "_", text)


def fetch_mp(material_ids: Sequence[str], out: str | Path, element: str | None = None,
             edge: str | None = "K", spectrum_type: str | None = "XANES",
             api_key: str | None = None) -> list[Path]:
    """Download Materials Project XAS documents and write one JSON file per document.

    Parameters
    ----------
    material_ids : sequence of str
        Materials Project ids (``mp-1234``).
    out : str or Path
        Output folder (created); files are ``<spectrum_id>.json``, written atomically.
    element : str, optional
        Absorbing element (all elements when None).
    edge : str, optional
        Edge (``"K"``, ``"L3"``, ``"L2"``, ``"L2,3"``); all when None.
    spectrum_type : str, optional
        ``"XANES"``, ``"EXAFS"`` or ``"XAFS"``; all when None.
    api_key : str, optional
        Materials Project API key; default the environment variable ``MP_API_KEY``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FetchError
        No API key, malformed material ids, the request failed (network, authentication,
        server), or no document matched.
    MissingExtraError
        ``mp-api`` is not installed (``pip install 'xasml[mp]'``).
    SpectrumError
        A returned document is not a valid XAS document.
    """
    from xasml.io.mp import mp_document_to_spectrum
    from xasml.utils import atomic_write_json

    ids = [str(m).strip() for m in material_ids]
    bad = [m for m in ids if not _MPID_RE.match(m)]
    if not ids or bad:
        raise FetchError(f"material ids must look like 'mp-1234', got {bad or 'none'}")
    key = api_key or os.environ.get("MP_API_KEY")
    if not key:
        raise FetchError("no Materials Project API key: pass --api-key or set the environment variable "
                         "MP_API_KEY (get a key at https://next-gen.materialsproject.org/api)")
    if element:
        from xasml.spectrum import normalize_element

        element = normalize_element(element, field_name="--element")
    rester_cls = _mprester_class()
    kwargs = _search_kwargs(element, edge, spectrum_type)
    try:
        with rester_cls(api_key=key) as mpr:
            xas = mpr.materials.xas if hasattr(mpr, "materials") else mpr.xas
            docs = list(xas.search(material_ids=ids, **kwargs))
    except XasmlError:
        raise
    except Exception as exc:  # network, authentication and server errors of many types
        raise FetchError(f"Materials Project request failed ({type(exc).__name__}: {exc}); check the "
                         "network connection and the API key") from exc
    if not docs:
        raise FetchError(f"no XAS documents for {', '.join(ids)} (element={element or 'any'}, "
                         f"edge={edge or 'any'}, type={spectrum_type or 'any'})")
    out = Path(out)
    written = []
    for i, doc in enumerate(docs):
        d = _doc_to_json(doc)
        spectrum = mp_document_to_spectrum(d, source="Materials Project response", index=i)  # validates
        name = d.get("spectrum_id") or f"{spectrum.material_id}-{spectrum.absorbing_element}-{spectrum.edge}-{i}"
        written.append(atomic_write_json(out / f"{_safe_name(str(name))}.json", d))
    return written


def _run_fetch_mp(args: argparse.Namespace) -> int:
    files = fetch_mp(args.material_ids, args.out, element=args.element, edge=args.edge,
                     spectrum_type=args.spectrum_type, api_key=args.api_key)
    for f in files:
        print(f)
    print(f"wrote {len(files)} XAS document(s) to {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``xasml fetch mp`` on the main parser's sub-parsers."""
    p = subparsers.add_parser("fetch", help="download computed spectra (Materials Project)",
                              description="Download computed spectra from online databases.")
    sub = p.add_subparsers(dest="source", metavar="SOURCE")
    mp = sub.add_parser("mp", help="Materials Project XAS documents (needs: pip install 'xasml[mp]')",
                        description="Download the XAS documents of Materials Project materials through "
                                    "mp_api (pip install 'xasml[mp]') and write one JSON file per "
                                    "document, OUT/<spectrum_id>.json, in the API's document shape "
                                    "(read them with xasml.io.read_mp_xas_document).")
    mp.add_argument("--material-ids", nargs="+", required=True, metavar="MPID",
                    help="Materials Project ids, e.g. mp-1022728 mp-1005792")
    mp.add_argument("--element", default=None, help="absorbing element, e.g. Cu (default: all elements)")
    mp.add_argument("--edge", default="K", help="absorption edge: K, L2, L3 or L2,3 (default: K)")
    mp.add_argument("--spectrum-type", default="XANES", choices=["XANES", "EXAFS", "XAFS"],
                    help="spectrum type (default: XANES)")
    mp.add_argument("--out", required=True, type=Path, help="output folder for the JSON documents")
    mp.add_argument("--api-key", default=None, help="API key (default: environment variable MP_API_KEY)")
    mp.set_defaults(func=_run_fetch_mp)

    def _help(args):
        p.print_help()
        return 2

    p.set_defaults(func=_help)
