"""Masking of personal data for display and logs, and a logging filter that applies it.

Rules (docs/privacy.md):
- phone: first 3 and last 4 digits kept, the middle 4 masked: 13812341234 -> 138****1234.
- resident ID number: first 3 and last 4 kept: 11010519491231002X -> 110***********002X.
- name, Chinese (no Latin letters): 1 char -> "*"; 2 chars -> first kept ("张三" -> "张*");
  3 or more -> first and last kept ("欧阳娜娜" -> "欧**娜").
- name, Latin letters: each word keeps its first letter ("John Smith" -> "J*** S****").
A value too short to keep anything safely is masked entirely. The masked form keeps the length,
which is how Chinese banks and shops display these values (e.g. 138****1234).
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar, Token
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "*"

# An 18-char ID number not glued to other letters or digits; the last char may be X.
ID_NUMBER_PATTERN = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
# A mainland mobile: optional +86/0086/86 prefix, 1[3-9] then 9 digits, optionally grouped
# 3-4-4 by a space or hyphen; not part of a longer run of digits.
MOBILE_PATTERN = re.compile(
    r"(?<![0-9])(?:(?:\+|00)?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9])"
)
_LATIN = re.compile(r"[A-Za-z]")


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return MASK * len(value)
    return value[:head] + MASK * (len(value) - head - tail) + value[len(value) - tail :]


def mask_phone(phone: str) -> str:
    """138****1234 for a mainland mobile; other values keep 3 + 4 characters when long enough.

    Spaces, hyphens and a +86 prefix are dropped first, so every form of one number masks alike.
    """
    compact = re.sub(r"[\s-]", "", phone)
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            compact = compact[len(prefix) :]
    if len(compact) == 13 and compact.startswith("861"):
        compact = compact[2:]
    return _keep_ends(compact, 3, 4)


def mask_id_number(id_number: str) -> str:
    """First 3 and last 4 kept: 11010519491231002X -> 110***********002X (length kept)."""
    compact = id_number.strip().upper()
    return _keep_ends(compact, 3, 4)


def mask_name(name: str) -> str:
    """Chinese: 张三 -> 张*, 欧阳娜娜 -> 欧**娜. Latin: John Smith -> J*** S****."""
    stripped = name.strip()
    if not stripped:
        return ""
    if _LATIN.search(stripped):
        return " ".join(word[0] + MASK * (len(word) - 1) for word in stripped.split())
    if len(stripped) == 1:
        return MASK
    if len(stripped) == 2:
        return stripped[0] + MASK
    return _keep_ends(stripped, 1, 1)


def redact_text(text: str) -> str:
    """Every ID number and mainland mobile in free text replaced by its masked form.

    ID numbers first: an ID number contains 11-digit runs that must not be read as phones.
    """
    text = ID_NUMBER_PATTERN.sub(lambda m: mask_id_number(m.group(0)), text)
    return MOBILE_PATTERN.sub(lambda m: mask_phone(m.group(1) + m.group(2) + m.group(3)), text)


# Values the application parsed as personal data during the current request (a phone searched
# for, an applicant's ID number and name): a log line of that request masks them wherever they
# appear, in whatever spelling the client sent (URL-encoded, '+' for spaces, grouped digits), which
# patterns of the raw line cannot promise. The API's middleware opens one list per request; a
# sync endpoint runs in a copy of the context, so the list is shared and appended to in place.
_PERSONAL: ContextVar[list[tuple[str, str]] | None] = ContextVar("fenqi_personal", default=None)
ACCESS_LOGGER = "uvicorn.access"
QUERY_VALUE_MASK = "***"
_QUERY_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")


def open_personal_scope() -> Token[list[tuple[str, str]] | None]:
    """Start collecting the personal values parsed while handling one request."""
    return _PERSONAL.set([])


def close_personal_scope(token: Token[list[tuple[str, str]] | None]) -> None:
    _PERSONAL.reset(token)


def note_personal(value: str, masked: str) -> None:
    """The application parsed `value` as personal data: mask it as `masked` in this request's
    log lines (every spelling: as sent, digits only, URL-encoded)."""
    found = _PERSONAL.get()
    if found is None or not value.strip():
        return
    spellings = {value, value.strip(), quote(value, safe=""), quote_plus(value, safe="")}
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 6:
        spellings.add(digits)
    for spelling in spellings:
        if spelling and (spelling, masked) not in found:
            found.append((spelling, masked))
    found.sort(key=lambda pair: -len(pair[0]))  # longest first: a spelling may contain another


def _redact_noted(text: str) -> str:
    for spelling, masked in _PERSONAL.get() or ():
        text = text.replace(spelling, masked)
    return text


def redact_full(text: str) -> str:
    """What this request parsed as personal data, then every ID number and mobile pattern."""
    return redact_text(_redact_noted(text))


def redact_request_target(target: str) -> str:
    """A request path and query as an access log may show them.

    Every query value is replaced (a query is where a search for a phone or ID number goes, in
    any encoding); names are kept when they look like parameter names. The path is decoded and
    kept as sent unless it holds personal data, then it is shown decoded and masked.
    """
    path, sep, query = target.partition("?")
    decoded = unquote_plus(path)
    masked_path = redact_full(decoded)
    shown = path if masked_path == decoded else masked_path
    if not sep:
        return shown
    names = []
    for part in query.split("&"):
        name = unquote_plus(part.partition("=")[0])
        names.append(f"{name if _QUERY_NAME.match(name) else QUERY_VALUE_MASK}={QUERY_VALUE_MASK}")
    return f"{shown}?{'&'.join(names)}"


def _redact_access(record: logging.LogRecord) -> bool:
    """uvicorn's access record keeps its args (client, method, path, version, status): its
    formatter unpacks them, so they are redacted in place rather than folded into the message."""
    args = record.args
    if record.name != ACCESS_LOGGER or not isinstance(args, tuple) or len(args) != 5:
        return False
    client, method, target, version, status = args
    record.args = (client, method, redact_request_target(str(target)), version, status)
    return True


def _redact_record(record: logging.LogRecord) -> None:
    if _redact_access(record):
        return
    # Format once with the args and keep the redacted result: masking each arg alone would miss
    # a number split across args, and non-str args (ints) must be rendered to be seen at all.
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: keep both parts visible, redacted
        message = f"{record.msg} {record.args}"
    redacted = redact_full(message)
    if redacted != message:
        # The args are folded into the message; an empty tuple (never None) keeps formatters
        # that read record.args working.
        record.msg = redacted
        record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_full(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_full(record.stack_info)


class RedactingFilter(logging.Filter):
    """Masks ID numbers and mobiles in a record's message, args, traceback and stack; never
    drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_fenqi_redacted", False):
            _redact_record(record)
            record._fenqi_redacted = True
        return True


_factory_installed = False


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Redact personal data in logs.

    With a logger: the filter goes on that logger and on each of its current handlers (a
    logger's own filters do not see records propagated from child loggers; its handlers do).
    Without one: every record created in the process is redacted as it is made, whatever logger
    or handler (added now or later) sees it. Calling it again adds nothing twice.
    """
    global _factory_installed
    redactor = RedactingFilter()
    if logger is None:
        if not _factory_installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                redactor.filter(record)
                return record

            logging.setLogRecordFactory(factory)
            _factory_installed = True
        return redactor
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(redactor)
    return redactor
