from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import CharField, F, Func, QuerySet, Value
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.parsers import BoundedJSONParser, PayloadTooLarge
from portal.stations.auth import IsStation, station_of

from .filters import FlashRecordFilter, in_utc
from .ingest import ingest
from .models import FlashRecord
from .serializers import (
    BATCH_LIMIT,
    PRINTABLE,
    BatchResultSerializer,
    FlashRecordBatchSerializer,
    FlashRecordSerializer,
)


class CanReadHistory(permissions.BasePermission):
    """QA and staff with the view permission; stations never read history."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if station_of(request) is not None:
            return False
        return bool(request.user and request.user.has_perm("flashes.view_flashrecord"))


class NewestFirst(CursorPagination):
    ordering = ("-started_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    invalid_cursor_message = "The cursor is not valid; start again from the first page."

    def decode_cursor(self, request: Request) -> Cursor | None:
        # DRF would put the position from the cursor into the query unchecked.
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        moment = _utc_moment(str(cursor.position))
        if moment is None:
            raise NotFound(self.invalid_cursor_message)
        position = str(moment)  # as DRF writes it, so equal positions compare equal
        return cursor._replace(position=position)  # type: ignore[arg-type]  # a str


def _utc_moment(text: str) -> datetime | None:
    try:
        moment = parse_datetime(text)
    except ValueError:  # well formed, yet no date: month 13
        return None
    return in_utc(moment) if moment is not None else None


FILTERS = [
    OpenApiParameter("serial", str, description="exact serial number"),
    OpenApiParameter("version", str, description="image version, e.g. v1.2.3"),
    OpenApiParameter("station", str, description="station name"),
    OpenApiParameter("status", str, enum=[s.value for s in FlashRecord.Status]),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="started at or after"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="started before"),
    OpenApiParameter(
        "format", str, enum=["json", "csv"], description="csv streams all"
    ),
]


def filtered(params: Any) -> QuerySet[FlashRecord]:
    form = FlashRecordFilter(params)
    if not form.is_valid():
        raise ValidationError(form.errors.get_json_data(), code="invalid_filter")
    return form.apply(FlashRecord.objects.select_related("station"))


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation; rows stream past it."""

    media_type = "text/csv"
    format = "csv"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return json.dumps(data).encode()  # only errors are rendered here


class BatchJSONParser(BoundedJSONParser):
    limit = 4 * 1024 * 1024  # BATCH_LIMIT records of a few hundred bytes each


class FlashRecordList(generics.ListAPIView[FlashRecord]):
    serializer_class = FlashRecordSerializer
    pagination_class = NewestFirst
    renderer_classes = [JSONRenderer, CSVRenderer]
    parser_classes = [BatchJSONParser]

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request.method == "POST":
            return [IsStation()]
        return [CanReadHistory()]

    def get_queryset(self) -> QuerySet[FlashRecord]:
        return filtered(self.request.query_params)

    @extend_schema(
        parameters=FILTERS, responses={200: FlashRecordSerializer(many=True)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        """Flash history, newest first, cursor-paginated; `format=csv` streams all."""
        if request.query_params.get("format") == "csv":
            return _csv_response(self.get_queryset())
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=FlashRecordBatchSerializer, responses={200: BatchResultSerializer}
    )
    def post(self, request: Request) -> Response:
        """A station's batch of records; each is accepted or rejected with a code."""
        station = station_of(request)
        assert station is not None  # IsStation
        batch = FlashRecordBatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        items = batch.validated_data["records"]
        if len(items) > BATCH_LIMIT:
            raise BatchTooLarge(
                f"A batch holds at most {BATCH_LIMIT} records; "
                f"this one had {len(items)}."
            )
        return Response({"results": ingest(station, items)}, status=status.HTTP_200_OK)


class BatchTooLarge(PayloadTooLarge):
    default_code = "batch_too_large"


class FlashRecordDetail(generics.RetrieveAPIView[FlashRecord]):
    serializer_class = FlashRecordSerializer
    permission_classes = [CanReadHistory]
    queryset = FlashRecord.objects.select_related("station")


class SerialHistory(generics.ListAPIView[FlashRecord]):
    """Every flash of one drive, newest first."""

    serializer_class = FlashRecordSerializer
    permission_classes = [CanReadHistory]
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[FlashRecord]:
        serial = self.kwargs["serial"]
        if not PRINTABLE.fullmatch(serial):  # PostgreSQL refuses NUL in a query
            raise ValidationError(
                {"serial": ["A serial number holds printable ASCII characters only."]},
                code="invalid_serial",
            )
        return FlashRecord.objects.select_related("station").filter(serial=serial)


CSV_COLUMNS = FlashRecordSerializer.Meta.fields


def _csv_rows(queryset: QuerySet[FlashRecord]) -> Iterator[str | bytes]:
    ordered = queryset.order_by("-started_at", "-id")
    if connection.vendor == "postgresql":
        return _csv_rows_copied(ordered)
    return _csv_rows_in_python(ordered)


def _export_values(queryset: QuerySet[FlashRecord]) -> QuerySet[FlashRecord, Any]:
    # Times as ISO 8601 in UTC, written by the database itself.
    iso = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
    times = {
        name: Func(Value("UTC"), F(name), function="timezone", output_field=CharField())
        for name in ("started_at", "ended_at", "received_at")
    }
    text = {
        name: Func(
            times[name], Value(iso), function="to_char", output_field=CharField()
        )
        for name in times
    }
    return queryset.annotate(
        station_name=F("station__name"),
        **{f"{name}_text": expression for name, expression in text.items()},
    ).values_list(
        *[
            {"station": "station_name"}.get(column, column)
            if column not in text
            else f"{column}_text"
            for column in CSV_COLUMNS
        ]
    )


def _csv_rows_copied(queryset: QuerySet[FlashRecord]) -> Iterator[str | bytes]:
    """PostgreSQL writes the CSV itself (COPY): a tenth of the cost of Python."""
    yield ",".join(CSV_COLUMNS) + "\r\n"
    sql, params = _export_values(queryset).query.sql_with_params()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, which can COPY
        with raw.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            yield from copy


def _csv_rows_in_python(queryset: QuerySet[FlashRecord]) -> Iterator[str | bytes]:
    """CSV in chunks of about 64 KiB: one write per row would cost a syscall each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    fields = [c if c != "station" else "station__name" for c in CSV_COLUMNS]
    for row in queryset.values_list(*fields).iterator(chunk_size=5000):
        writer.writerow(
            [_iso(value) if isinstance(value, datetime) else value for value in row]
        )
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv_response(queryset: QuerySet[FlashRecord]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_rows(queryset), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="flash_records.csv"'
    return response
