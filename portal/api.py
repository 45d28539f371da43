"""What every API error looks like: `{"code": "...", "detail": "..."}`.

Codes are stable; the kiosk switches on them. Field errors add `fields`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(JSONParser):
    """JSON bodies up to `limit` bytes; DRF's own parser has no limit."""

    limit: int | None = None  # None: settings.API_MAX_JSON_BODY

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = self.limit or settings.API_MAX_JSON_BODY
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return json.loads(body.decode(settings.DEFAULT_CHARSET))
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _error_body(exc)
    log.info(
        "api error status=%s code=%s path=%s",
        response.status_code,
        response.data["code"],
        context["request"].path if "request" in context else "?",
    )
    return response


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {}
        codes = exc.get_codes()
        code = _first(codes) or "invalid"
        return {
            "code": code,
            "detail": _first(exc.detail) or "Invalid input.",
            "fields": fields,
        }
    codes = exc.get_codes()
    return {
        "code": codes if isinstance(codes, str) else _first(codes),
        "detail": str(exc.detail),
    }


def first_error(value: Any) -> Any:
    """The first leaf of a nested error structure (an ErrorDetail with a code)."""
    while isinstance(value, dict | list):
        if not value:
            return ""
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return value


def _first(value: Any) -> str:
    return str(first_error(value))


def error(code: str, detail: str, http_status: int) -> Response:
    """A response in the error shape for errors a view decides itself."""
    return Response({"code": code, "detail": detail}, status=http_status)
