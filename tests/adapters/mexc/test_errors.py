"""MEXC answers → cdb's error tree, for the answers the simulator cannot produce as easily."""

from __future__ import annotations

import pytest

from cdb_cli.adapters.mexc.errors import error_for_response, parse_retry_after
from cdb_cli.engine.errors import RateLimited, VenueRejected, VenueServerError

WHERE = "POST /api/v3/order"


def test_success_is_no_error() -> None:
    assert error_for_response(200, b"{}", {}, where=WHERE) is None
    assert error_for_response(200, b'{"code":200,"data":[]}', {}, where=WHERE) is None


@pytest.mark.parametrize(
    "body", [b"", b"  ", b"<html><body>Bad gateway</body></html>", b"not json"]
)
def test_unusable_200_bodies_mean_outcome_unknown(body: bytes) -> None:
    error = error_for_response(200, body, {}, where=WHERE)
    assert isinstance(error, VenueServerError)
    assert "outcome unknown" in error.message


def test_html_proxy_page_on_502_is_a_server_error_without_the_page() -> None:
    page = b"<!DOCTYPE html><html>" + b"x" * 5000 + b"</html>"
    error = error_for_response(502, page, {}, where=WHERE)
    assert isinstance(error, VenueServerError)
    assert "HTML" in error.message
    assert len(error.message) < 200


def test_429_carries_retry_after() -> None:
    error = error_for_response(429, b"", {"retry-after": "3"}, where=WHERE)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0


def test_403_waf_page_is_rate_limited() -> None:
    assert isinstance(error_for_response(403, b"<html/>", {}, where=WHERE), RateLimited)


def test_code_in_a_200_body_is_an_error() -> None:
    error = error_for_response(200, b'{"code":10101,"msg":"x"}', {}, where=WHERE)
    assert isinstance(error, VenueRejected)
    assert error.code == 10101


def test_unknown_4xx_without_json_is_a_rejection() -> None:
    error = error_for_response(404, b"Not Found", {}, where=WHERE)
    assert isinstance(error, VenueRejected)
    assert error.code == 404


@pytest.mark.parametrize(
    ("value", "seconds"), [("2", 2.0), ("x", None), (None, None), ("-1", None)]
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_10007_points_at_the_api_symbol_list() -> None:
    body = b'{"code":10007,"msg":"symbol not support api"}'
    error = error_for_response(400, body, {}, where=WHERE)
    assert isinstance(error, VenueRejected)
    assert error.code == 10007
    assert "not tradable over the API: see /api/v3/defaultSymbols" in error.message
