"""Accounts and people read from CSV exports, for ``abm match`` on a file.

Sales ops bring whatever their CRM or spreadsheet wrote: Excel's Windows-1252 or UTF-16,
semicolons instead of commas, Salesforce's own column labels, a row with an unclosed quote, a
50 KB note pasted into a name. Each problem is reported against its line and the rest of the
file is still read; only a missing required column stops a file, because then no row can be
read. Input is bytes and output is plain records, so this stays a pure part of the core.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from matching.types import MatchResult
from store.records import AccountRecord, PersonRecord

CSV_CRM = "csv"
MAX_VALUE_CHARS = 255  # Salesforce's limit for names and websites; longer is pasted junk
MAX_ID_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")

# Canonical column -> accepted headers (compared lower-case, with _ and - read as spaces).
ACCOUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "account id", "accountid", "record id"),
    "name": ("name", "account name", "accountname", "company", "company name"),
    "website": ("website", "domain", "url", "company domain name"),
    "country": ("country", "billing country", "billingcountry", "country/region"),
    "state": ("state", "billing state", "billingstate", "state/province", "billing state/province", "region"),
    "city": ("city", "billing city", "billingcity"),
    "phone": ("phone", "phone number"),
    "parent_id": ("parent id", "parentid", "parent account id", "parent"),
    "type": ("type", "account type"),
    "industry": ("industry",),
    "employees": ("employees", "number of employees", "numberofemployees", "company size"),
    "created": ("created", "created at", "created date", "createddate"),
}
PEOPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "lead id", "contact id", "person id", "record id"),
    "email": ("email", "email address"),
    "company": ("company", "company name"),
    "website": ("website", "company website", "domain"),
    "country": ("country", "mailing country", "mailingcountry", "country/region"),
    "state": ("state", "mailing state", "mailingstate", "state/province", "region"),
    "city": ("city", "mailing city", "mailingcity"),
    "phone": ("phone", "phone number", "mobile phone"),
    "kind": ("kind", "record type", "object"),
    "account_id": ("account id", "accountid"),
    "industry": ("industry",),
    "employees": ("employees", "number of employees", "numberofemployees", "company size"),
}
ACCOUNT_NEEDS = (("id",), ("name", "website"))  # each group: at least one of these columns
PEOPLE_NEEDS = (("id",), ("company", "email", "website"))


class CsvFileError(ValueError):
    """The file as a whole cannot be read (no header, a required column missing)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One line's problem. Errors skip the row; warnings say what was done to keep it."""

    source: str
    line: int
    severity: Literal["error", "warning"]
    message: str
    record_id: str | None = None

    def __str__(self) -> str:
        who = f" ({self.record_id})" if self.record_id else ""
        return f"{self.source} line {self.line}{who}: {self.severity}: {self.message}"


@dataclass(slots=True)
class CsvTable:
    """Records read from one file, with the CSV id of each (records carry a positional int id)."""

    source: str
    records: list[Any] = field(default_factory=list)
    csv_ids: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    rows_read: int = 0


def _header_key(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").replace("_", " ").replace("-", " ").lower().split())


def _decode(data: bytes) -> tuple[str, str]:
    """Text of the file and the encoding used: a BOM decides, else UTF-8 with bad bytes kept as surrogates."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    return data.decode("utf-8", errors="surrogateescape"), "utf-8"


def _repair(value: str) -> str:
    """Bytes that were not UTF-8 re-read as Windows-1252 (Excel's usual), else Latin-1 (never fails)."""
    raw = value.encode("utf-8", errors="surrogateescape")
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _delimiter(text: str) -> str:
    """The delimiter of the header line: European Excel writes ';', some tools tabs or pipes."""
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in ",;\t|"}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _map_header(header: Sequence[str], spec: Mapping[str, tuple[str, ...]]) -> tuple[dict[str, int], list[str]]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for i, raw in enumerate(header):
        key = _header_key(raw)
        column = next((c for c, aliases in spec.items() if key in aliases), None)
        if column is None or column in positions:
            if raw.strip():
                ignored.append(raw.strip())
            continue
        positions[column] = i
    return positions, ignored


def _rows(data: bytes, table: CsvTable, spec: Mapping[str, tuple[str, ...]],
          needs: Sequence[tuple[str, ...]]) -> Iterator[tuple[int, dict[str, str], list[RowProblem]]]:
    """(first line, canonical values, warnings) per readable row; errors go straight to the table."""
    text, table.encoding = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError(f"{table.source}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise CsvFileError(f"{table.source}: the header line cannot be read: {exc}") from None
    header = [_repair(h) if _SURROGATE.search(h) else h for h in header]
    positions, table.ignored_columns = _map_header(header, spec)
    missing = [group for group in needs if not any(c in positions for c in group)]
    if missing:
        wanted = "; ".join(" or ".join(f"'{c}'" for c in group) for group in missing)
        found = ", ".join(repr(h) for h in header) or "none"
        raise CsvFileError(f"{table.source}: missing column {wanted} (columns found: {found})")
    table.columns = {c: header[i] for c, i in positions.items()}
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            table.problems.append(RowProblem(table.source, start, "error", f"cannot be read as CSV ({exc}); skipped"))
            last_line = reader.line_num
            continue
        last_line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        table.rows_read += 1
        warnings: list[RowProblem] = []
        if len(row) > len(header):
            table.problems.append(RowProblem(
                table.source, start, "error",
                f"{len(row)} values but the header has {len(header)} columns (an unquoted delimiter?); skipped"))
            continue
        if len(row) < len(header):
            absent = ", ".join(header[len(row):])
            warnings.append(RowProblem(table.source, start, "warning",
                                       f"{len(row)} values but the header has {len(header)}; missing: {absent}"))
        values: dict[str, str] = {}
        repaired: list[str] = []
        multiline: list[str] = []
        for column, i in positions.items():
            value = row[i] if i < len(row) else ""
            if _SURROGATE.search(value):
                value = _repair(value)
                repaired.append(column)
            if _CONTROL.search(value):
                value = _CONTROL.sub(" ", value)
                warnings.append(RowProblem(table.source, start, "warning", f"control characters removed from {column}"))
            if "\n" in value or "\r" in value:
                multiline.append(column)
                value = " ".join(value.split())
            value = value.strip()
            limit = MAX_ID_CHARS if column in ("id", "parent_id", "account_id") else MAX_VALUE_CHARS
            if len(value) > limit:
                if column in ("id", "parent_id", "account_id"):
                    table.problems.append(RowProblem(table.source, start, "error",
                                                     f"{column} is {len(value):,} characters long; skipped"))
                    break
                warnings.append(RowProblem(table.source, start, "warning",
                                           f"{column} is {len(value):,} characters; kept the first {limit}"))
                value = value[:limit].strip()
            values[column] = value
        else:
            if multiline:
                warnings.append(RowProblem(
                    table.source, start, "warning",
                    f"{', '.join(multiline)} spans lines {start}-{last_line} (an unclosed quote?); read as one line"))
            if repaired:
                shown = values[repaired[0]]
                warnings.append(RowProblem(
                    table.source, start, "warning",
                    f"not valid UTF-8 in {', '.join(repaired)}; read as Windows-1252 ({shown!r})"))
            yield start, values, warnings


def _check_id(table: CsvTable, line: int, values: dict[str, str], seen: set[str], duplicate: str) -> str | None:
    record_id = values.get("id", "")
    if not record_id:
        table.problems.append(RowProblem(table.source, line, "error", "empty id; skipped"))
        return None
    if record_id in seen:
        table.problems.append(RowProblem(table.source, line, "error" if duplicate == "error" else "warning",
                                         f"id {record_id!r} appears again" +
                                         ("; skipped" if duplicate == "error" else ""), record_id))
        if duplicate == "error":
            return None
    seen.add(record_id)
    return record_id


def _created(table: CsvTable, line: int, record_id: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        table.problems.append(RowProblem(table.source, line, "warning",
                                         f"created {value[:40]!r} is not a date (YYYY-MM-DD); ignored", record_id))
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_accounts(data: bytes, source: str = "accounts.csv") -> CsvTable:
    """Account records (crm ``csv``, crm_id = the file's id) from an export; see README "Matching an export"."""
    table = CsvTable(source)
    seen: set[str] = set()
    for line, values, warnings in _rows(data, table, ACCOUNT_COLUMNS, ACCOUNT_NEEDS):
        record_id = _check_id(table, line, values, seen, duplicate="error")
        if record_id is None:
            continue
        if not values.get("name") and not values.get("website"):
            table.problems.append(RowProblem(table.source, line, "error", "empty name and website; skipped", record_id))
            continue
        table.problems.extend(RowProblem(w.source, w.line, w.severity, w.message, record_id) for w in warnings)
        if not values.get("name"):
            table.problems.append(RowProblem(table.source, line, "warning", "empty name: matched by website only",
                                             record_id))
        table.records.append(AccountRecord(
            id=len(table.records) + 1, crm=CSV_CRM, crm_id=record_id, name=values.get("name") or None,
            website=values.get("website") or None, country=values.get("country") or None,
            state=values.get("state") or None, city=values.get("city") or None, phone=values.get("phone") or None,
            parent_crm_id=values.get("parent_id") or None, type=values.get("type") or None,
            created_at=_created(table, line, record_id, values.get("created", "")),
            industry=values.get("industry") or None, employees=_employees(table, line, record_id, values),
        ))
        table.csv_ids.append(record_id)
    known = set(table.csv_ids)
    for account in table.records:
        if account.parent_crm_id and account.parent_crm_id not in known:
            table.problems.append(RowProblem(table.source, 0, "warning",
                                             f"parent id {account.parent_crm_id!r} is not in the file; no roll-up",
                                             account.crm_id))
    return table


def _employees(table: CsvTable, line: int, record_id: str, values: dict[str, str]) -> int | None:
    """A whole number of employees ('1,200' too); anything else is reported and left out."""
    text = values.get("employees", "").strip().replace(",", "").replace("_", "")
    if not text:
        return None
    if text.isdigit() and len(text) <= 9:
        return int(text)
    table.problems.append(RowProblem(table.source, line, "warning",
                                     f"employees {text[:40]!r} is not a whole number; ignored", record_id))
    return None


def read_people(data: bytes, source: str = "people.csv") -> CsvTable:
    """Lead and contact records from an export. A row with an account id is a contact of that account."""
    table = CsvTable(source)
    seen: set[str] = set()
    for line, values, warnings in _rows(data, table, PEOPLE_COLUMNS, PEOPLE_NEEDS):
        record_id = _check_id(table, line, values, seen, duplicate="warning")
        if record_id is None:
            continue
        table.problems.extend(RowProblem(w.source, w.line, w.severity, w.message, record_id) for w in warnings)
        kind = values.get("kind", "").lower()
        if kind not in ("lead", "contact"):
            if kind:
                table.problems.append(RowProblem(table.source, line, "warning",
                                                 f"kind {values['kind'][:40]!r} is not lead or contact", record_id))
            kind = "contact" if values.get("account_id") else "lead"
        if not values.get("company") and not values.get("email") and not values.get("website"):
            table.problems.append(RowProblem(table.source, line, "warning",
                                             "empty company, email and website: nothing to match on", record_id))
        table.records.append(PersonRecord(
            id=len(table.records) + 1, crm=CSV_CRM, crm_id=record_id, kind=kind,
            email=values.get("email") or None, company=values.get("company") or None,
            website=values.get("website") or None, country=values.get("country") or None,
            state=values.get("state") or None, city=values.get("city") or None, phone=values.get("phone") or None,
            account_crm_id=(values.get("account_id") or None) if kind == "contact" else None,
            industry=values.get("industry") or None, employees=_employees(table, line, record_id, values),
        ))
        table.csv_ids.append(record_id)
    return table


OUTPUT_COLUMNS = ("person_id", "account_id", "account_name", "decision", "confidence", "method", "reason")
EXPLAIN_COLUMNS = ("matched_account_id", "best_account_id", "runner_up_account_id", "runner_up_confidence",
                   "candidates", "signals")


def result_rows(results: Sequence[MatchResult], people: CsvTable, accounts: CsvTable,
                explain: bool = False) -> Iterator[dict[str, str]]:
    """One output row per person: ids as written in the input files, the decision and its reason."""
    account_ids = dict(enumerate(accounts.csv_ids, start=1))
    names = {a.id: a.name or "" for a in accounts.records}
    for result in results:
        row = {
            "person_id": people.csv_ids[result.person_id - 1],
            "account_id": account_ids.get(result.account_id, "") if result.account_id else "",
            "account_name": names.get(result.account_id, "") if result.account_id else "",
            "decision": result.decision,
            "confidence": f"{result.confidence:.4f}",
            "method": result.method,
            "reason": result.reason,
        }
        if explain:
            reasons = result.reasons
            runner = reasons.get("runner_up") or {}
            signals = reasons.get("signals") or {}
            row.update({
                "matched_account_id": account_ids.get(result.matched_account_id or 0, ""),
                "best_account_id": account_ids.get(reasons.get("best_account_id") or 0, ""),
                "runner_up_account_id": account_ids.get(runner.get("account_id") or 0, ""),
                "runner_up_confidence": f"{runner['confidence']:.4f}" if runner else "",
                "candidates": str(reasons.get("candidates", "")),
                "signals": "; ".join(f"{k}={level}({weight:+g})" for k, (level, weight) in signals.items()),
            })
        yield row

