"""Options of ``xasml simulate feff`` (:class:`SimulateFeffConfig`, a :class:`~xasml.config.XasmlConfig`).

Every option of the command except ``--out``, ``--dry-run`` and ``--json`` is a field here, with
the command line's name (``--max-sites`` -> ``max_sites``), default and description; a
``--config`` file (TOML/JSON) holds any subset and the options given on the command line
override it. ``--show-config`` prints :meth:`~xasml.config.XasmlConfig.show`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from xasml.config import XasmlConfig, element_symbol

__all__ = ["SimulateFeffConfig"]


class SimulateFeffConfig(XasmlConfig):
    """Every option of ``xasml simulate feff`` (structures, FEFF settings, execution)."""

    inputs: list[str] = Field([], description="structure files (CIF, POSCAR, ...) or folders of them (the "
                                              "positional arguments)")
    element: list[str] = Field(["all"], description="absorbing elements (--element, repeatable or comma-separated); "
                                                    "['all'] = every element but H")
    preset: Literal["v0", "mp"] = Field(
        "v0", description="FEFF settings: 'v0' those of the shared feff10-*-v0 sets (SCF 3.0, FMS 5.0, 6 Å, no "
                          "LDOS), 'mp' pymatgen's MPXANESSet defaults")
    radius: float | None = Field(None, gt=0, description="cluster radius, Å (null: the preset's)")
    tag: dict[str, str] = Field({}, description="FEFF cards to set, e.g. {\"FMS\": \"6.0 0\"} (--tag CARD=VALUE, "
                                                "repeatable; added to this table)")
    delete: list[str] = Field([], description="FEFF cards to remove (--delete CARD,CARD)")
    amcsd_elements: list[str] | None = Field(
        None, description="query the AMCSD (larixite): structures containing all these elements, ordered only "
                          "(null: no query by elements)")
    amcsd_ids: list[int] = Field([], description="AMCSD ids (--amcsd-ids ID,ID)")
    amcsd_ids_file: str | None = Field(None, description="file with one AMCSD id per line")
    max_elements: int | None = Field(None, ge=1, description="AMCSD: at most this many elements")
    max_atoms: int | None = Field(None, ge=1, description="AMCSD: at most this many atoms in the primitive cell")
    limit: int | None = Field(None, ge=1, description="AMCSD: at most this many structures")
    mp_ids: list[str] = Field([], description="Materials Project ids (needs mp-api and MP_API_KEY)")
    max_sites: int | None = Field(None, ge=1, description="skip structures with more inequivalent absorbing sites")
    workers: int | None = Field(None, ge=1, description="local worker processes (null: one per core)")
    scheduler: str | None = Field(None, description="address of a running Dask scheduler to submit to instead "
                                                    "(e.g. tcp://login1:8786)")
    timeout: float = Field(3600.0, gt=0, description="time limit per FEFF stage of a site, s")
    retry_failed: bool = Field(False, description="rerun sites listed in failures.csv")

    @field_validator("element")
    @classmethod
    def _elements(cls, v: list[str]) -> list[str]:
        if not v or [s.strip().lower() for s in v] == ["all"]:
            return ["all"]
        return [element_symbol(s) for s in v]

    @field_validator("amcsd_elements")
    @classmethod
    def _amcsd_elements(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [element_symbol(s) for s in v]

    @field_validator("tag")
    @classmethod
    def _cards(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for k, val in v.items():
            card = str(k).strip().upper()
            if not card.isalnum():
                raise ValueError(f"FEFF card {k!r}: expected a card name such as SCF or FMS")
            out[card] = str(val).strip()
        return out

    @property
    def elements(self) -> list[str] | str:
        """The ``elements`` argument of :func:`xasml.simulate.engine.simulate` (``"all"`` or symbols)."""
        return "all" if self.element == ["all"] else list(self.element)
