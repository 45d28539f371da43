"""What every API error looks like: `{"code": "...", "detail": "..."}`.

Codes are stable; the kiosk switches on them. Field errors add `fields`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .parsers import PayloadTooLarge

log = logging.getLogger(__name__)


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
