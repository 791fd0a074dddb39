"""Validate JSON against the vendored excerpt of publiq's UiTPAS API 4.0 OpenAPI document."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

#: The excerpt: GET /permissions and the Financial reports operations, with their schemas.
EXCERPT_PATH = Path(__file__).parent / "data" / "uitpas4-openapi-excerpt.json"
_URI = "urn:uitpas4-openapi-excerpt"

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    """Check an RFC 3339 full-date."""
    if not isinstance(value, str):
        return True
    return len(value) == 10 and date.fromisoformat(value) is not None


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """Check an RFC 3339 date-time with an offset."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None and "T" in value


@cache
def excerpt() -> dict[str, Any]:
    """Return the vendored OpenAPI excerpt."""
    doc: dict[str, Any] = json.loads(EXCERPT_PATH.read_text(encoding="utf-8"))
    return doc


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(excerpt(), default_specification=DRAFT7)
    return Registry().with_resource(_URI, resource)


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def response_pointer(path: str, method: str, status: str, media: str) -> str:
    """Return the JSON pointer of a response schema in the excerpt."""
    return "#/" + _pointer("paths", path, method, "responses", status, "content", media, "schema")


def validator(pointer: str) -> jsonschema.Draft7Validator:
    """Return a validator for the schema at ``pointer`` (``#/components/schemas/Report``)."""
    return jsonschema.Draft7Validator(
        {"$ref": f"{_URI}{pointer}"}, registry=_registry(), format_checker=FORMATS
    )


def errors(instance: object, pointer: str) -> list[str]:
    """Return every validation error of ``instance`` against the schema at ``pointer``."""
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator(pointer).iter_errors(instance)
    ]


def schema_pointer(name: str) -> str:
    """Return the pointer of a component schema."""
    return f"#/components/schemas/{name}"


def response_examples(path: str, method: str, status: str, media: str) -> list[Any]:
    """Return the example values the document gives for one response."""
    content = excerpt()["paths"][path][method]["responses"][status]["content"][media]
    return [example["value"] for example in content.get("examples", {}).values()]
