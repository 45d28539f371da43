"""`python -m kiosk drives | flash | log export` on loop devices.

smartctl cannot identify a loop device; a stand-in replays a recorded USB
drive's answer (tests/kiosk/smartctl).
"""

import json
from pathlib import Path

import pytest

from kiosk import drives
from kiosk.__main__ import main
from kiosk.library import Library
from kiosk.versions import Version
from tests.kiosk.drive_fixtures import (
    install_smartctl_stand_in,
    loop_target,
    make_image,
    recording,
)

SIZE = 4 * 2**20


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    data = tmp_path / "station"
    library = Library(data / "recommended", data / "quarantine")
    image, digest = make_image(tmp_path, SIZE)
    library.add(image, Version.parse("v1.2.3"), digest)
    monkeypatch.setenv("KIOSK_ALLOW_LOOP_TARGETS", "1")
    monkeypatch.setenv("KIOSK_STATION_NAME", "Station 3")
    install_smartctl_stand_in(
        tmp_path / "smartctl", monkeypatch, output=recording("samsung_t7_asmedia.json")
    )
    return data


def test_drives_refuses_the_system_disk(data_dir, capsys):
    assert main(["--data-dir", str(data_dir), "-q", "drives"]) == 0

    root_disk = drives.protected_disks([Path("/")])
    lines = capsys.readouterr().out.splitlines()
    for name in root_disk:
        line = next(line for line in lines if line.startswith(f"/dev/{name}\t"))
        assert line.endswith(
            "It is a system disk of this station (it holds /); it is never offered."
        )
    assert root_disk


def test_flash_then_export_the_log(data_dir, tmp_path, capsys):
    with loop_target(tmp_path, SIZE) as device:
        code = main(["--data-dir", str(data_dir), "-q", "flash", "v1.2.3", device])
    flashed = capsys.readouterr().out
    exported = main(
        [
            "--data-dir",
            str(data_dir),
            "-q",
            "log",
            "export",
            "--format",
            "json",
            "--serial",
            "s6wbns0t8",
            "--status",
            "passed",
            "--output",
            "-",
        ]
    )
    records = json.loads(capsys.readouterr().out)

    assert code == 0, flashed
    assert f"PASS  {device} serial S6WBNS0T812345A" in flashed
    assert exported == 0
    assert [(r["status"], r["serial"], r["station"]) for r in records] == [
        ("passed", "S6WBNS0T812345A", "Station 3")
    ]


def test_flash_fails_plainly_for_a_file(data_dir, tmp_path, capsys):
    target = tmp_path / "not-a-disk.img"
    target.write_bytes(b"")

    code = main(["--data-dir", str(data_dir), "-q", "flash", "v1.2.3", str(target)])

    assert code == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["--data-dir", str(data_dir), "-q", "log", "export"]) == 0
    csv_text = (data_dir / "logs" / "flash_operations.csv").read_text()
    assert "not a block device" in csv_text

    def exported(*filters: str) -> list[str]:
        arguments = ["--data-dir", str(data_dir), "-q", "log", "export", *filters]
        assert main([*arguments, "--format", "json", "--output", "-"]) == 0
        return [r["status"] for r in json.loads(capsys.readouterr().out)]

    capsys.readouterr()
    assert exported("--status", "failed") == ["failed"]
    assert exported("--status", "passed") == []
    assert exported("--status", "failed", "--serial", "NOT-THERE") == []


def test_export_refuses_a_bad_date(data_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(data_dir), "log", "export", "--since", "yesterday"])

    assert exit_info.value.code == 2
    assert "is not a date" in capsys.readouterr().err
