"""Masking rules and the log-redaction filter."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from fenqi.privacy import masking
from fenqi.privacy.masking import (
    RedactingFilter,
    install_log_redaction,
    mask_id_number,
    mask_name,
    mask_phone,
    redact_text,
)

ID_NUMBER = "11010519491231002X"
PHONE = "13812341234"


def test_mask_phone() -> None:
    assert mask_phone(PHONE) == "138****1234"
    assert mask_phone("+86 138 1234 1234") == "138****1234"
    assert mask_phone("8613812341234") == "138****1234"
    assert mask_phone("1234567") == "*******"  # too short to keep anything


def test_mask_id_number() -> None:
    assert mask_id_number(ID_NUMBER) == "110***********002X"
    assert mask_id_number("11010519491231002x") == "110***********002X"
    assert len(mask_id_number(ID_NUMBER)) == 18
    assert mask_id_number("1234567") == "*******"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("李", "*"),
        ("王小明", "王*明"),
        ("欧阳娜娜", "欧**娜"),
        ("John Smith", "J*** S****"),
        ("  Ana  ", "A**"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_redact_text_finds_every_form() -> None:
    text = (
        f"id {ID_NUMBER}, id lower 11010519491231002x, phone {PHONE}, "
        "phone +86 139-1234-5678, grouped 150 1234 5678"
    )
    out = redact_text(text)
    assert ID_NUMBER not in out and "11010519491231002x" not in out
    assert PHONE not in out and "13912345678" not in out and "1391234" not in out
    assert "110***********002X" in out
    assert "138****1234" in out and "139****5678" in out and "150****5678" in out


def test_redact_text_leaves_other_numbers() -> None:
    # Amounts, longer ids and numbers not starting 13-19 are not phones or ID numbers.
    text = "order 1234567890123456789 amount 12812341234 ts 1764158400000 limit 500000"
    assert redact_text(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("fenqi.test.privacy.redaction")
    logger.handlers = [handler]
    logger.filters = []
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers = []
    logger.filters = []


def test_filter_masks_message_and_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    install_log_redaction(logger)
    install_log_redaction(logger)  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    logger.info("applicant %s phone %s", ID_NUMBER, int(PHONE))
    logger.info(f"inline id {ID_NUMBER} phone {PHONE}")
    logger.warning("dict args %(phone)s", {"phone": PHONE})
    try:
        raise ValueError(f"bad id {ID_NUMBER}")
    except ValueError:
        logger.exception("failed for %s", PHONE)
    out = stream.getvalue()
    assert ID_NUMBER not in out and PHONE not in out
    assert out.count("110***********002X") == 3
    assert out.count("138****1234") == 4
    assert "ValueError" in out  # the traceback is still there, redacted


def test_child_logger_records_pass_the_handler_filter(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    install_log_redaction(logger)
    logger.getChild("child").info("phone %s", PHONE)
    assert PHONE not in stream.getvalue()
    assert "138****1234" in stream.getvalue()


def test_without_redaction_the_number_would_leak(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    # Control: proves the capture above would have seen a plaintext number.
    logger, stream = captured
    if masking._factory_installed:
        pytest.skip("process-wide redaction already installed")
    logger.info("phone %s", PHONE)
    assert PHONE in stream.getvalue()


def test_process_wide_redaction(
    captured: tuple[logging.Logger, io.StringIO],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream = captured
    monkeypatch.setattr(masking, "_factory_installed", False)
    original = logging.getLogRecordFactory()
    try:
        install_log_redaction()
        install_log_redaction()  # wraps the factory once
        logger.propagate = True
        with caplog.at_level(logging.INFO):
            logger.info("id %s phone %s", ID_NUMBER, PHONE)
    finally:
        logging.setLogRecordFactory(original)
    for text in (stream.getvalue(), caplog.text):
        assert ID_NUMBER not in text and PHONE not in text
        assert "110***********002X" in text and "138****1234" in text
    assert all(ID_NUMBER not in r.getMessage() for r in caplog.records)


def test_uvicorn_access_records_keep_their_args_and_lose_query_values() -> None:
    """uvicorn's access formatter unpacks record.args (issue 24 item 1: the redaction set them
    to None and every request printed a "Logging error"); query values go, in every spelling
    (issue 25 item 6: `%2B86+139+...` was logged in clear)."""
    from uvicorn.logging import AccessFormatter

    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    target = "/v1/ops/customers?phone=%2B86+138+1234+1234&limit=5"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", target, "1.1", 200),
        None,
    )
    RedactingFilter().filter(record)
    assert isinstance(record.args, tuple) and len(record.args) == 5
    line = formatter.format(record)
    assert line == '127.0.0.1:5000 - "GET /v1/ops/customers?phone=***&limit=*** HTTP/1.1" 200 OK'
    path = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("c", "GET", "/%2B86%20138%201234%201234/x", "1.1", 404),
        None,
    )
    RedactingFilter().filter(path)
    assert "138****1234" in formatter.format(path) and "1234 1234" not in formatter.format(path)


def test_values_the_request_parsed_are_masked_in_any_spelling(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    from fenqi.privacy.masking import close_personal_scope, note_personal, open_personal_scope

    logger, stream = captured
    install_log_redaction(logger)
    token = open_personal_scope()
    try:
        note_personal("+86 138 1234 1234", "138****1234")
        note_personal("Zhang Wei", "Z**** W**")  # a name: no pattern could find it
        logger.info("raw %s", "%2B86+138+1234+1234")
        logger.info("digits 8613812341234 name Zhang Wei")
    finally:
        close_personal_scope(token)
    logger.info("outside a request, a name is just text: Zhang Wei")
    out = stream.getvalue()
    assert "1234+1234" not in out and "Zhang Wei\n" in out and out.count("Zhang Wei") == 1
    assert "Z**** W**" in out
