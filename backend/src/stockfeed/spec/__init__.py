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
from fastapi.responses import JSONResponse

from stockfeed.api.openapi import error_responses

router = APIRouter(tags=["protocol"])

YAML_TYPE = "application/yaml"


class YamlResponse(Response):
    """Declares `application/yaml` to the OpenAPI document, as the answer says."""

    media_type = YAML_TYPE


class _JsonText(JSONResponse):
    """JSON already encoded (the document's own indentation), sent as is."""

    def render(self, content: object) -> bytes:
        assert isinstance(content, str)
        return content.encode("utf-8")


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


_DOCUMENT = {"type": "object", "description": "An AsyncAPI 3.0 document"}


@router.get(
    "/asyncapi.yaml",
    summary="The WebSocket protocol as an AsyncAPI 3 document",
    response_class=YamlResponse,
    responses={200: {"content": {YAML_TYPE: {"schema": _DOCUMENT}}}, **error_responses()},
)
async def asyncapi_yaml() -> YamlResponse:
    return YamlResponse(text())


@router.get(
    "/asyncapi.json",
    summary="The same AsyncAPI 3 document in JSON",
    response_class=_JsonText,
    responses={200: {"content": {"application/json": {"schema": _DOCUMENT}}}, **error_responses()},
)
async def asyncapi_json() -> _JsonText:
    return _JsonText(_json())
