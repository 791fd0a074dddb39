"""Deterministic default balies: realistic Flemish names, UiTiD-style keys."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from uitpas_async.xml_api.sandbox.config import DispositionStyle, SandboxBalie

__all__ = ["balie_key", "default_balies"]

#: Hand-picked names first, so that even a small set holds every awkward case:
#: spaces (and a trailing space, like the real "CC De Werf " in the fixture),
#: apostrophes, accents outside ASCII and outside latin-1, and hostile path characters.
_NAMED: tuple[tuple[str, DispositionStyle], ...] = (
    ("CC De Werf ", "unquoted"),
    ("Bibliotheek Sint-Niklaas", "quoted"),
    ("Cultuurcentrum 't Gasthuys", "unquoted"),
    ("Théâtre de Namur", "rfc6266"),
    ("Jeugddienst Ĳzer & Zee", "rfc6266"),
    ("Vrijetijdsloket Aalst/Erembodegem", "unquoted"),
    ('Zaal "Nieuwe" ../../etc/passwd', "quoted"),
    ("Sportdienst Holsbeek", "none"),
    ("CC Het Perron", "unquoted"),
    ("Stadsschouwburg Mechelen", "unquoted"),
)

_KINDS = (
    "CC",
    "Bibliotheek",
    "Cultuurcentrum",
    "Jeugddienst",
    "Sportdienst",
    "Vrijetijdsloket",
    "Museum",
    "Academie",
    "Ontmoetingscentrum",
)
_TOWNS = (
    "Aalst",
    "Tienen",
    "Holsbeek",
    "Leuven",
    "Gent",
    "Brugge",
    "Kortrijk",
    "Hasselt",
    "Genk",
    "Ieper",
    "Ninove",
    "Lier",
    "Geel",
    "Mol",
    "Tielt",
    "Deinze",
    "Lokeren",
    "Zottegem",
    "Diest",
    "Herentals",
    "Menen",
    "Ronse",
    "Waregem",
    "Zele",
)


def balie_key(rng: random.Random) -> str:
    """Return a consumer key shaped like the docs' ``57588868-EA2A-3A56-0AC173415A6D1BE7``."""
    digits = f"{rng.getrandbits(128):032X}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:]}"


def _generated_style(index: int) -> DispositionStyle:
    # Mostly the real server's unquoted form, with the other forms sprinkled in.
    if index % 11 == 0:
        return "none"
    if index % 7 == 0:
        return "rfc6266"
    if index % 5 == 0:
        return "quoted"
    return "unquoted"


def _generated_names() -> Iterator[str]:
    """Yield "kind town" names forever, numbering later rounds."""
    for round_ in itertools.count(1):
        suffix = "" if round_ == 1 else f" {round_}"
        for town in _TOWNS:
            for kind in _KINDS:
                yield f"{kind} {town}{suffix}"


def default_balies(count: int, seed: int) -> tuple[SandboxBalie, ...]:
    """Return ``count`` balies with distinct names and keys drawn from ``seed``."""
    # A dedicated RNG keeps keys stable whatever else the seed later drives.
    rng = random.Random(f"balies:{seed}")
    taken = {name for name, _ in _NAMED}
    generated = (name for name in _generated_names() if name not in taken)
    balies: list[SandboxBalie] = []
    for index in range(count):
        if index < len(_NAMED):
            name, style = _NAMED[index]
        else:
            name, style = next(generated), _generated_style(index)
        balies.append(SandboxBalie(balie_key(rng), name, style))
    return tuple(balies)
