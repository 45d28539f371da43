"""The OpenAPI schema is the contract; schemathesis holds the API to it."""

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation

from portal.flashes.models import FlashRecord
from portal.flashes.serializers import BATCH_LIMIT

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY_READS = {
    ("GET", "/api/flash-records/"),
    ("GET", "/api/flash-records/{id}"),
    ("GET", "/api/serials/{serial}/flash-records"),
}


def test_schema_and_docs_are_served(live_server):
    schema = httpx.get(f"{live_server.url}/api/schema?format=json").json()
    docs = httpx.get(f"{live_server.url}/api/docs")

    assert "/api/flash-images/latest" in schema["paths"]
    assert "/api/flash-images/download" in schema["paths"]
    assert schema["components"]["securitySchemes"]["stationToken"]["scheme"] == "bearer"
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_schema_states_the_batch_limit_as_a_number(live_server):
    schema = httpx.get(f"{live_server.url}/api/schema?format=json").json()

    batch = schema["components"]["schemas"]["FlashRecordBatch"]
    help_text = batch["properties"]["records"]["description"]
    assert help_text.startswith(f"Up to {BATCH_LIMIT} records")
    assert BATCH_LIMIT == 500  # as the README says


def _fuzz(
    strategies: Iterable[SearchStrategy[Case[Any]]], mode: GenerationMode
) -> tuple[Counter[int], list[tuple[str, str, Any, Any, str]]]:
    """Status codes of generated requests, and the requests that caused a 5xx."""
    statuses: Counter[int] = Counter()
    server_errors = []

    for strategy in strategies:

        @settings(
            max_examples=50,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case):
            response = case.call()
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                request = (case.method, case.formatted_path, case.query, case.body)
                server_errors.append((*request, response.text))

        try:
            check()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid form.
            assert mode is GenerationMode.NEGATIVE

    return statuses, server_errors


def _operations(live_server) -> list[APIOperation[Any, Any, Any, Any]]:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema?format=json")
    results = schema.get_all_operations()
    return [result.ok() for result in results]  # type: ignore[union-attr]  # an Err raises


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_no_generated_request_causes_a_server_error(
    live_server, station_token, make_release, mode
):
    make_release("v1.2.3")
    auth = {"Authorization": f"Bearer {station_token}"}
    strategies = [
        operation.as_strategy(mode, headers=auth)
        for operation in _operations(live_server)
    ]

    statuses, server_errors = _fuzz(strategies, mode)

    assert server_errors == []
    assert sum(statuses.values()) >= 30
    classes = {code // 100 for code in statuses}
    # Invalid input is refused; a batch answers invalid records one by one (200).
    assert classes <= {2, 4}
    assert 4 in classes
    assert mode is GenerationMode.NEGATIVE or 2 in classes


@pytest.fixture
def history(station) -> None:
    """A few records across serials, statuses and versions, for QA to query."""
    started = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for i, status in enumerate(FlashRecord.Status):
        FlashRecord.objects.create(
            station=station,
            serial=f"S3K9NX0T12345{i % 2}",
            image_version=f"v1.2.{i % 3}",
            image_sha256="a" * 64,
            status=status,
            image_size=1000,
            bytes_written=1000,
            started_at=started + timedelta(minutes=i),
        )


def _without_bearer(case: Case[Any]) -> Case[Any]:
    # QA signs in with a session; a generated station token would be refused
    # (401) before the query ran.
    case.headers.pop("Authorization", None)
    return case


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_no_generated_history_query_causes_a_server_error(
    live_server, qa, history, mode
):
    session = {"sessionid": qa.cookies["sessionid"]}
    strategies = [
        operation.as_strategy(mode, cookies=session).map(_without_bearer)
        for operation in _operations(live_server)
        if (operation.method.upper(), operation.path) in HISTORY_READS
    ]

    statuses, server_errors = _fuzz(strategies, mode)

    assert len(strategies) == len(HISTORY_READS)
    assert server_errors == []
    assert sum(statuses.values()) >= 30
    classes = {code // 100 for code in statuses}
    assert classes <= {2, 4}
    assert not {401, 403} & set(statuses)  # QA was let in to every query
    assert 2 in classes
