"""Retries, backoff, offline state and strict answers, against a misbehaving server."""

import json
import logging
from datetime import UTC, datetime

import pytest

from kiosk.errors import PortalError, PortalOffline
from kiosk.portal_client import PortalClient
from kiosk.versions import Version
from tests.kiosk import portal_fixtures
from tests.kiosk.portal_fixtures import DROP, FaultServer, Reply, release_body

refused_url = portal_fixtures.refused_url

NOW = datetime(2026, 12, 3, 10, 42, 5, tzinfo=UTC)
V123 = Version.parse("v1.2.3")
GRANT = {"download_url": "http://127.0.0.1:1/x", "expires_at": "2026-12-03T12:42:05Z"}


class Recorder:
    """The client's sleep and clock: records waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = NOW

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def clock(self) -> datetime:
        return self.now


@pytest.fixture
def time_():
    return Recorder()


def client_for(url: str, time_: Recorder, **options) -> PortalClient:
    return PortalClient(
        url,
        "station-token",
        sleep=time_.sleep,
        clock=time_.clock,
        jitter=lambda: 1.0,
        **options,
    )


def test_sends_the_station_token_as_bearer(time_):
    with (
        FaultServer(Reply(200, release_body())) as server,
        client_for(server.url, time_) as client,
    ):
        client.latest()

    assert server.seen[0].headers["Authorization"] == "Bearer station-token"
    assert server.seen[0].path == "/api/flash-images/latest"


def test_retries_a_503_until_the_portal_recovers(time_):
    replies = [Reply(503), Reply(503), Reply(200, release_body())]
    with FaultServer(*replies) as server, client_for(server.url, time_) as client:
        release = client.latest()

    assert release is not None and release.version == V123
    assert len(server.seen) == 3
    assert time_.waits == [0.5, 1.0]
    assert not client.offline


def test_backoff_doubles_with_jitter_up_to_a_cap(refused_url, time_):
    draws = iter([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    client = PortalClient(
        refused_url,
        "t",
        sleep=time_.sleep,
        clock=time_.clock,
        jitter=lambda: next(draws),
        retries=6,
        backoff=1.0,
        max_delay=10.0,
    )

    with client, pytest.raises(PortalOffline):
        client.latest()

    assert time_.waits == [0.5, 2.0, 2.0, 8.0, 5.0, 10.0]


def test_gives_up_on_a_lasting_500_with_a_plain_sentence(time_):
    with (
        FaultServer(Reply(500, {"code": "error"})) as server,
        client_for(server.url, time_, retries=2) as client,
        pytest.raises(PortalError) as caught,
    ):
        client.latest()

    assert len(server.seen) == 3
    assert caught.value.status == 500
    assert "internal error (HTTP 500); try again later" in caught.value.message
    assert not isinstance(caught.value, PortalOffline)


def test_honours_retry_after_in_seconds(time_):
    replies = [Reply(429, {}, {"Retry-After": "7"}), Reply(200, release_body())]
    with FaultServer(*replies) as server, client_for(server.url, time_) as client:
        client.latest()

    assert time_.waits == [7.0]


def test_honours_retry_after_as_an_http_date(time_):
    later = "Thu, 03 Dec 2026 10:42:17 GMT"
    replies = [Reply(503, {}, {"Retry-After": later}), Reply(200, release_body())]
    with FaultServer(*replies) as server, client_for(server.url, time_) as client:
        client.latest()

    assert time_.waits == [12.0]


def test_a_retry_after_beyond_the_cap_is_not_waited_for(time_):
    busy = Reply(429, {"code": "throttled", "detail": "x"}, {"Retry-After": "3600"})
    with (
        FaultServer(busy) as server,
        client_for(server.url, time_) as client,
        pytest.raises(PortalError, match="busy; try again in a few minutes"),
    ):
        client.latest()

    assert len(server.seen) == 1
    assert time_.waits == []


@pytest.mark.parametrize(
    ("status", "code"), [(400, "invalid_version"), (401, "not_authenticated")]
)
def test_never_retries_a_4xx(time_, status, code):
    reply = Reply(status, {"code": code, "detail": "The version is bad."})
    with (
        FaultServer(reply) as server,
        client_for(server.url, time_) as client,
        pytest.raises(PortalError) as caught,
    ):
        client.download_url(V123)

    assert len(server.seen) == 1
    assert caught.value.code == code
    assert caught.value.status == status
    assert time_.waits == []


def test_a_4xx_error_repeats_the_portals_detail(time_):
    reply = Reply(400, {"code": "invalid_version", "detail": "Use v1.2.3."})
    with (
        FaultServer(reply) as server,
        client_for(server.url, time_) as client,
        pytest.raises(PortalError) as caught,
    ):
        client.download_url(V123)

    assert caught.value.message == (
        "The portal refused the request (HTTP 400: Use v1.2.3.)."
    )


def test_a_dropped_connection_is_retried(time_):
    with (
        FaultServer(DROP, Reply(200, GRANT)) as server,
        client_for(server.url, time_) as client,
    ):
        url, expires_at = client.download_url(V123)

    assert url == "http://127.0.0.1:1/x"
    assert expires_at == datetime(2026, 12, 3, 12, 42, 5, tzinfo=UTC)
    assert json.loads(server.seen[-1].body) == {"version": "v1.2.3"}


def test_offline_since_is_kept_until_the_portal_answers_again(time_):
    replies = [DROP, DROP, DROP, DROP, Reply(200, release_body())]
    with (
        FaultServer(*replies) as server,
        client_for(server.url, time_, retries=1) as client,
    ):
        with pytest.raises(PortalOffline):
            client.latest()
        time_.now = NOW.replace(hour=11)
        with pytest.raises(PortalOffline):
            client.latest()
        first_outage = client.offline_since
        message = client.offline_message()

        assert client.latest() is not None

    assert first_outage == NOW
    assert message.startswith("Portal unreachable since 10:42")
    assert client.offline_since is None
    assert client.offline_message() == ""


def test_a_gateway_error_means_the_portal_is_offline(time_):
    with (
        FaultServer(Reply(502, raw=b"<html>Bad Gateway</html>")) as server,
        client_for(server.url, time_, retries=1) as client,
        pytest.raises(PortalOffline, match=r"since 10:42 \(HTTP 502\)"),
    ):
        client.latest()

    assert client.offline_since == NOW


def _body(**changes: object) -> bytes:
    return json.dumps(release_body(**changes)).encode()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        (b"[]", "documented fields"),
        (json.dumps({**release_body(), "extra": 1}).encode(), "documented fields"),
        (json.dumps({"version": "v1.2.3"}).encode(), "documented fields"),
        (_body(file_size=-1), "file size -1"),
        (_body(file_size=0), "file size 0"),
        (_body(file_size=2**40 + 1), "impossible"),
        (_body(file_size="1000"), "impossible"),
        (_body(file_size=True), "impossible"),
        (_body(file_size=10.5), "impossible"),
        (_body(checksum="ab" * 32), "checksum"),
        (_body(checksum="sha256:" + "AB" * 32), "checksum"),
        (_body(checksum="md5:" + "ab" * 16), "checksum"),
        (_body(version="../../etc/passwd"), "version"),
        (_body(version="v1.2.3/../../x"), "version"),
        (_body(version=123), "version"),
        (_body(release_date="2026-13-01"), "date"),
        (_body(release_date="20261130"), "date"),
        (_body(description=None), "description"),
    ],
)
def test_refuses_a_malformed_release_and_logs_the_body(time_, caplog, body, problem):
    with (
        FaultServer(Reply(200, raw=body)) as server,
        client_for(server.url, time_) as client,
        pytest.raises(PortalError, match=problem) as caught,
    ):
        client.latest()

    assert caught.value.code == "malformed_answer"
    assert caught.value.message.endswith("tell the portal's administrator.")
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(body.decode()[:40] in line for line in logged)


@pytest.mark.parametrize(
    "grant",
    [
        {"download_url": "file:///etc/passwd", "expires_at": GRANT["expires_at"]},
        {"download_url": GRANT["download_url"], "expires_at": "2026-12-03T12:42:05"},
        {"download_url": GRANT["download_url"], "expires_at": "tomorrow"},
        {"download_url": GRANT["download_url"]},
    ],
)
def test_refuses_a_malformed_download_grant(time_, grant):
    with (
        FaultServer(Reply(200, grant)) as server,
        client_for(server.url, time_) as client,
        pytest.raises(PortalError) as caught,
    ):
        client.download_url(V123)

    assert caught.value.code == "malformed_answer"


def test_no_published_release_is_an_answer_not_an_error(time_):
    reply = Reply(404, {"code": "no_published_release", "detail": "None yet."})
    with FaultServer(reply) as server, client_for(server.url, time_) as client:
        assert client.latest() is None
