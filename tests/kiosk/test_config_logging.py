import logging
from collections.abc import Iterator

import pytest

from kiosk import applog


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with the handlers setup() adds taken off afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_warnings_and_errors_go_to_app_errors_log(tmp_path, root_logger):
    path = applog.setup(tmp_path / "logs")
    log = logging.getLogger("kiosk.test")

    log.info("download started")
    log.warning("portal unreachable: %s", "refused")
    log.error("image %s is corrupt", "v1.2.3")

    text = path.read_text()
    assert path == tmp_path / "logs" / "app_errors.log"
    assert "download started" not in text
    assert "WARNING kiosk.test: portal unreachable: refused" in text
    assert "ERROR kiosk.test: image v1.2.3 is corrupt" in text


def test_info_goes_to_the_console(tmp_path, root_logger, capsys):
    applog.setup(tmp_path / "logs")

    logging.getLogger("kiosk.test").info("download of %s started", "v1.2.3")

    assert "INFO kiosk.test: download of v1.2.3 started" in capsys.readouterr().err


def test_the_error_log_rotates(tmp_path, root_logger):
    path = applog.setup(tmp_path / "logs", max_bytes=2000)

    for number in range(100):
        logging.getLogger("kiosk.test").warning("retry %d of the portal", number)

    assert path.stat().st_size <= 2000
    assert (tmp_path / "logs" / "app_errors.log.1").exists()


def test_setting_up_twice_keeps_one_set_of_handlers(tmp_path, root_logger):
    before = len(root_logger.handlers)

    applog.setup(tmp_path / "a")
    applog.setup(tmp_path / "b")

    assert len(root_logger.handlers) == before + 2
