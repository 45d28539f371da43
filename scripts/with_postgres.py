"""Run a command against a throw-away PostgreSQL cluster: `with_postgres.py CMD…`.

The cluster lives in a temporary folder, listens on 127.0.0.1 and a private
socket only, and is removed afterwards. PostgreSQL refuses to run as root,
so as root the cluster belongs to the `postgres` account. Without
PostgreSQL installed the command is skipped with a message (exit 0).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT = 120


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def _major(path: str) -> int:
    return int(Path(path).parts[4]) if Path(path).parts[4].isdigit() else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def main(command: list[str]) -> int:
    bin_dir = server_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            # CI must cover PostgreSQL; make test installs it as root.
            print(
                "PostgreSQL is not installed, and CI must run on it.", file=sys.stderr
            )
            return 1
        print("PostgreSQL is not installed; skipping the PostgreSQL run.")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    data, port = workdir / "data", free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "portal", "-A", "trust"]
    subprocess.run(
        as_owner(initdb), check=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log")]
    subprocess.run(
        as_owner([*pg_ctl, "-o", options, "-w", "start"]), check=True, timeout=TIMEOUT
    )
    try:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://portal@127.0.0.1:{port}/postgres",
        }
        print(f"PostgreSQL on 127.0.0.1:{port}: {' '.join(command)}", flush=True)
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        subprocess.run(as_owner([*pg_ctl, "-m", "fast", "-w", "stop"]), timeout=TIMEOUT)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
