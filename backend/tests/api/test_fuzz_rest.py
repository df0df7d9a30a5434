"""The REST API fuzzed from its own OpenAPI document (schemathesis) against a real server.

Every operation in `/openapi.json` gets generated requests, valid and invalid (wrong types,
odd strings, out-of-range values), and every answer goes through all of schemathesis's
checks (the CLI's `--checks all`): never a 5xx; a request valid by the document is
accepted and an invalid one refused (so the document says exactly what the server
accepts: ticker patterns and lengths, list limits, enums); the status, content type,
headers and body of each answer are the ones the document gives (api/openapi.py). One
server for the whole module; a bounded number of examples per operation, derandomized so
that a failure reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.servers import Server

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("fuzz-rest"),
        *("--source", "sim", "--sim-tick-interval", "0.2", "--tickers", "AAPL,MSFT"),
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(rest_server: Server) -> OpenApiSchema:
    return schemathesis.openapi.from_url(rest_server.base + "/openapi.json")


load_all_checks()
ALL_CHECKS = CHECKS.get_all()  # `--checks all`

# Each operation's strategy is run by hypothesis directly rather than through
# schemathesis's lazy pytest plugin, which fails on pytest 9 (it writes Function._nodeid).
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_document_is_exact(api_schema: OpenApiSchema, rest_server: Server) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    tested = []
    for operation in operations:
        # Requests that fit the schema, then requests that break it (wrong types, values
        # out of range, missing parameters).
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(mode))
            def call(case: Case) -> None:
                case.call_and_validate(base_url=rest_server.base, checks=ALL_CHECKS, timeout=10)

            try:
                call()
            except Unsatisfiable:
                # No parameter to break (e.g. GET /api/tickers): no negative case exists.
                assert mode is GenerationMode.NEGATIVE and not operation.query, operation.path
        tested.append(f"{operation.method.upper()} {operation.path}")
    print("fuzzed:", ", ".join(tested))
    # The document must list the API this suite is about (not an empty schema).
    assert "GET /api/quotes/{ticker}" in tested and "GET /api/history/{ticker}" in tested, tested


def test_the_server_is_still_healthy_after_the_fuzz(rest_server: Server) -> None:
    assert rest_server.proc.poll() is None
    assert "Traceback" not in rest_server.log(), rest_server.log()[-3000:]
    assert rest_server.health()["connections"] == 0
