"""The whole test session's logs are searched for the personal data the tests use.

tests/conftest.py installs one `PersonalDataScanner` as a root logging handler for the session; fixtures that
start processes hand it those processes' output (`watch_file`, `scan_output`). At the end of the session every
line that holds a customer's email or full mobile number (in any of the spellings the tests type, or E.164)
fails the run, with the offending line.

The needles are collected from the tests themselves: `VALID_BOOKING`, and every email address at a reserved
example domain or phone number written in a test module.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import phonenumbers

TESTS_DIR = Path(__file__).resolve().parent
DEFAULT_REGION = "IN"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@example\.(?:com|org|net)\b", re.IGNORECASE)
_PHONE_LIKE = re.compile(r"(?<![\w.])\+?\(?\d[\d ()-]{6,20}\d(?![\w.])")
# Separators people type inside a number: spaces, dots, dashes, brackets (after URL-decoding, so %20 too), and
# the '+' a query string writes for a space.
_NUMBER_SEPARATORS = re.compile(r"(?<=\d)[\s().+-]+(?=\d)")
_MAX_LINE = 400


@dataclass(frozen=True)
class Hit:
    source: str
    line: str

    def __str__(self) -> str:
        line = self.line if len(self.line) <= _MAX_LINE else self.line[:_MAX_LINE] + "…"
        return f"{self.source}: {line}"


def national_digits(text: str, region: str = DEFAULT_REGION) -> str | None:
    """The national significant number of a valid phone number written in `text`, else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.national_significant_number(number)


def collect_personal_data(booking: dict[str, str], sources: list[Path] | None = None) -> tuple[set[str], set[str]]:
    """(emails, mobile numbers as national digits) that the tests use."""
    emails = {booking["email"].lower()}
    mobiles = {national_digits(booking["mobile"])} - {None}
    for path in sources if sources is not None else sorted(TESTS_DIR.rglob("*.py")):
        text = path.read_text(errors="replace")
        emails.update(match.lower() for match in _EMAIL.findall(text))
        mobiles.update(digits for match in _PHONE_LIKE.findall(text) if (digits := national_digits(match)))
    return emails, {digits for digits in mobiles if len(digits) >= 8}


class PersonalDataScanner(logging.Handler):
    """A logging handler (and a reader of captured output) that records every line holding personal data."""

    def __init__(self, emails: set[str], mobiles: set[str]) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.emails = {email.lower() for email in emails}
        self.mobiles = set(mobiles)
        self.hits: list[Hit] = []
        self.watched: list[tuple[str, Path]] = []

    def findings(self, line: str) -> list[str]:
        """What personal data `line` holds (empty when none)."""
        lowered = unquote(line).lower()
        found = [email for email in self.emails if email in lowered]
        digits_only = _NUMBER_SEPARATORS.sub("", lowered)
        found += [mobile for mobile in self.mobiles if mobile in digits_only]
        return found

    def scan_output(self, text: str, source: str) -> None:
        for line in text.splitlines():
            if self.findings(line):
                self.hits.append(Hit(source, line))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is scanned as its raw parts
            text = f"{record.name}: {record.msg!r} {record.args!r}"
        self.scan_output(text, f"log record from {record.name}")

    def watch_file(self, path: Path, source: str) -> None:
        """Scan this file (a subprocess's captured output) when the session ends."""
        self.watched.append((source, Path(path)))

    def finish(self) -> list[Hit]:
        for source, path in self.watched:
            if path.exists():
                self.scan_output(path.read_text(errors="replace"), f"{source} ({path.name})")
        self.watched.clear()
        unique = list(dict.fromkeys(self.hits))
        self.hits = unique
        return unique

    def forget(self, predicate) -> None:
        """Drop the hits a test made on purpose (the test that proves the scanner works)."""
        self.hits = [hit for hit in self.hits if not predicate(hit)]


_scanner: PersonalDataScanner | None = None


def install(booking: dict[str, str]) -> PersonalDataScanner:
    global _scanner
    _scanner = PersonalDataScanner(*collect_personal_data(booking))
    logging.getLogger().addHandler(_scanner)
    return _scanner


def uninstall() -> None:
    global _scanner
    if _scanner is not None:
        logging.getLogger().removeHandler(_scanner)
    _scanner = None


def scanner() -> PersonalDataScanner | None:
    return _scanner


def watch_file(path: Path, source: str) -> None:
    """For fixtures that send a subprocess's output to a file: have it searched at the session's end."""
    if _scanner is not None:
        _scanner.watch_file(path, source)


def scan_output(text: str, source: str) -> None:
    """For fixtures that capture a subprocess's output as text."""
    if _scanner is not None:
        _scanner.scan_output(text, source)


def still_installed() -> bool:
    """Whether the scanner is still a root handler: something that replaced the root logger's handlers during
    the session (logging.config does) would have blinded it."""
    return _scanner is not None and _scanner in logging.getLogger().handlers


def report(found: list[Hit], installed: bool) -> dict:
    """A worker's findings as plain data, for pytest-xdist to carry to the controller."""
    return {"hits": [[hit.source, hit.line] for hit in found], "installed": installed}


def merge_reports(found: list[Hit], installed: bool, reports: list[dict]) -> tuple[list[Hit], bool]:
    """The controller's own findings plus every worker's: any hit anywhere, and any blinded scanner, counts."""
    hits = list(found)
    for worker in reports:
        hits.extend(Hit(source, line) for source, line in worker["hits"])
        installed = installed and worker["installed"]
    return list(dict.fromkeys(hits)), installed


def fail_session_on_hits(session, found: list[Hit], write_line, installed: bool = True) -> None:
    """Turn hits into a failed session, each offending line shown."""
    if not installed:
        write_line("")
        write_line("PERSONAL DATA IN LOGS: the log scanner was removed from the root logger during the session, "
                   "so the logs were not all searched.")
        session.exitstatus = 1
    if not found:
        return
    write_line("")
    write_line(f"PERSONAL DATA IN LOGS: {len(found)} line(s) hold a customer's email or full mobile number:")
    for hit in found:
        write_line(f"  {hit}")
    session.exitstatus = 1
