"""The protocol as a document: the AsyncAPI 3 description of the WebSocket API.

`asyncapi.yaml` ships inside the package (package data), so an installed server serves
the very file the tests check its messages against: `GET /asyncapi.yaml` as written and
`GET /asyncapi.json` as the same document in JSON.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from fastapi import APIRouter, Response

router = APIRouter(tags=["protocol"])

YAML_TYPE = "application/yaml"


@cache
def text() -> str:
    """The document exactly as shipped."""
    return files("stockfeed.spec").joinpath("asyncapi.yaml").read_text(encoding="utf-8")


@cache
def _json() -> str:
    return json.dumps(load(), ensure_ascii=False, indent=2)


def load() -> dict[str, Any]:
    """The document as data (a fresh copy each call: callers may change it)."""
    doc: dict[str, Any] = yaml.safe_load(text())
    return doc


@router.get("/asyncapi.yaml", summary="The WebSocket protocol as an AsyncAPI 3 document")
async def asyncapi_yaml() -> Response:
    return Response(text(), media_type=YAML_TYPE)


@router.get("/asyncapi.json", summary="The same AsyncAPI 3 document in JSON")
async def asyncapi_json() -> Response:
    return Response(_json(), media_type="application/json")
