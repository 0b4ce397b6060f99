"""``abm match`` on CSV exports: columns, bad rows reported per line, the output file.

Every bad row (missing values, empty names, huge values, broken encodings, unclosed quotes)
must be reported against its line while the rest of the file is still matched.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matching.csv_input import CsvFileError, read_accounts, read_people
from worker.cli import app

runner = CliRunner()

ACCOUNTS = """\
id,name,website,country,state,city,phone,parent_id,type,created
A1,Acme Corporation,https://www.acme.com,US,CA,San Francisco,+1 415 555 0100,,Customer,2019-05-01
A2,Acme Europe GmbH,acme.de,DE,,Berlin,,A1,,2021-01-01
A3,Globex Inc.,globex.com,US,,,,,,
"""
PEOPLE = """\
id,company,email,website,country,state,city,phone,kind,account_id
L1,ACME corp,jane@acme.com,,USA,,,,,
L2,Globex,bob@gmail.com,,,,,,,
C1,Whatever,carl@globex.com,,,,,,contact,A1
L3,Initrode,x@initrode.com,,,,,,,
"""


def problems_of(table) -> list[tuple[int, str, str]]:
    return [(p.line, p.severity, p.message) for p in table.problems]


def test_reads_every_documented_column() -> None:
    accounts = read_accounts(ACCOUNTS.encode())
    assert accounts.problems == [] and accounts.ignored_columns == []
    acme, europe, _ = accounts.records
    assert (acme.crm_id, acme.name, acme.website, acme.country, acme.state, acme.city) == (
        "A1", "Acme Corporation", "https://www.acme.com", "US", "CA", "San Francisco")
    assert (acme.phone, acme.type, acme.created_at.year) == ("+1 415 555 0100", "Customer", 2019)
    assert europe.parent_crm_id == "A1" and accounts.csv_ids == ["A1", "A2", "A3"]
    people = read_people(PEOPLE.encode())
    assert people.problems == []
    assert [(p.crm_id, p.kind, p.account_crm_id) for p in people.records] == [
        ("L1", "lead", None), ("L2", "lead", None), ("C1", "contact", "A1"), ("L3", "lead", None)]


def test_salesforce_labels_semicolons_and_a_bom_are_understood() -> None:
    export = ("\ufeffAccount ID;Account Name;Website;Billing Country;Industry;Number Of Employees;Rating\n"
              "001;Acme;acme.com;US;Retail;1,200;Hot\n")
    table = read_accounts(export.encode("utf-8"))
    assert table.columns == {"id": "Account ID", "name": "Account Name", "website": "Website",
                             "country": "Billing Country", "industry": "Industry", "employees": "Number Of Employees"}
    assert table.ignored_columns == ["Rating"]
    record = table.records[0]
    assert (record.name, record.country, record.industry, record.employees) == ("Acme", "US", "Retail", 1200)
    people = read_people(b"id,company,industry,employees\nL1,Acme,Retail,about 50\n")
    assert (people.records[0].industry, people.records[0].employees) == ("Retail", None)
    assert [p.message for p in people.problems] == ["employees 'about 50' is not a whole number; ignored"]


def test_a_missing_required_column_stops_the_file_with_the_columns_found() -> None:
    with pytest.raises(CsvFileError, match=r"missing column 'id' \(columns found: 'name', 'website'\)"):
        read_accounts(b"name,website\nAcme,acme.com\n")
    with pytest.raises(CsvFileError, match="'company' or 'email' or 'website'"):
        read_people(b"id,country\nL1,US\n")
    with pytest.raises(CsvFileError, match="empty"):
        read_people(b"")


def test_bad_rows_are_reported_per_line_and_the_rest_is_read() -> None:
    data = (
        "id,name,website,country\n"
        "A1,Acme,acme.com,US\n"
        "A2,Short Row\n"                       # line 3: fewer values: kept, with a warning
        "A3,Too,many,values,here\n"            # line 4: more values: skipped
        ",No Id,noid.com,US\n"                 # line 5: skipped
        "A5,,,US\n"                            # line 6: no name and no website: skipped
        "A6,,only-site.com,\n"                 # line 7: no name: matched by website only
        "A1,Acme Again,acme.com,US\n"          # line 8: duplicate id: skipped
        "\n"                                   # blank: ignored
        "A9,Initech,initech.com,XX\n"          # line 10
    )
    table = read_accounts(data.encode())
    assert table.csv_ids == ["A1", "A2", "A6", "A9"]
    assert problems_of(table) == [
        (3, "warning", "2 values but the header has 4; missing: website, country"),
        (4, "error", "5 values but the header has 4 columns (an unquoted delimiter?); skipped"),
        (5, "error", "empty id; skipped"),
        (6, "error", "empty name and website; skipped"),
        (7, "warning", "empty name: matched by website only"),
        (8, "error", "id 'A1' appears again; skipped"),
    ]
    assert str(table.problems[0]) == "accounts.csv line 3 (A2): warning: 2 values but the header has 4; missing: " \
                                     "website, country"


def test_huge_values_are_truncated_or_skipped_without_losing_the_file() -> None:
    data = (
        "id,name,website\n"
        f"A1,{'Acme ' * 2000},acme.com\n"              # 10,000 characters: truncated
        f"A2,\"{'x' * 200_000}\",big.com\n"           # beyond the csv module's field limit: skipped
        f"{'9' * 300},Long Id,longid.com\n"          # an id this long is not an id: skipped
        "A4,Initech,initech.com\n"
    )
    table = read_accounts(data.encode())
    assert table.csv_ids == ["A1", "A4"]
    assert len(table.records[0].name) <= 255
    (truncated, too_big, long_id) = problems_of(table)
    assert truncated == (2, "warning", "name is 9,999 characters; kept the first 255")
    assert too_big[:2] == (3, "error") and "field larger than field limit" in too_big[2]
    assert long_id == (4, "error", "id is 300 characters long; skipped")


def test_an_unclosed_quote_is_reported_with_the_lines_it_swallowed() -> None:
    data = 'id,name,website\nA1,"Acme,acme.com\n' + "".join(f"A{i},Name {i},n{i}.com\n" for i in range(2, 80))
    table = read_accounts(data.encode())
    assert table.csv_ids == ["A1"]
    assert problems_of(table) == [
        (2, "warning", "2 values but the header has 3; missing: website"),
        (2, "warning", "name is 1,549 characters; kept the first 255"),
        (2, "warning", "name spans lines 2-80 (an unclosed quote?); read as one line"),
    ]


def test_broken_encodings_are_repaired_per_row_and_reported() -> None:
    utf8_then_cp1252 = ("id,name,website\nA1,Müller AG,mueller.de\n".encode()
                        + b"A2,Soci\xe9t\xe9 G\xe9n\xe9rale,sg.fr\n")
    table = read_accounts(utf8_then_cp1252)
    assert [a.name for a in table.records] == ["Müller AG", "Société Générale"]
    assert problems_of(table) == [
        (3, "warning", "not valid UTF-8 in name; read as Windows-1252 ('Société Générale')")]
    undefined_in_cp1252 = b"id,name\nA1,Caf\x81 \x9d\n"  # bytes Windows-1252 leaves undefined: Latin-1
    assert read_accounts(undefined_in_cp1252).records[0].name == "Caf\x81 \x9d"
    utf16 = read_accounts("id,name\nA1,Ünïcode Ltd\n".encode("utf-16"))
    assert (utf16.encoding, utf16.records[0].name, utf16.problems) == ("utf-16", "Ünïcode Ltd", [])


def test_control_characters_bad_dates_unknown_parents_and_kinds() -> None:
    accounts = read_accounts(b"id,name,parent_id,created\nA1,Ac\x00me,A9,yesterday\n")
    assert accounts.records[0].name == "Ac me" and accounts.records[0].created_at is None
    assert [m for _, _, m in problems_of(accounts)] == [
        "control characters removed from name", "created 'yesterday' is not a date (YYYY-MM-DD); ignored",
        "parent id 'A9' is not in the file; no roll-up"]
    people = read_people(b"id,company,email,kind\nL1,Acme,,prospect\nL1,,,\n")
    assert [p.kind for p in people.records] == ["lead", "lead"]
    assert [m for _, _, m in problems_of(people)] == [
        "kind 'prospect' is not lead or contact", "id 'L1' appears again",
        "empty company, email and website: nothing to match on"]


# -- the command -----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run_match(tmp_path: Path, accounts: str | bytes, people: str | bytes, *extra: str):
    # Weights fixed here (and read from abm.yaml like in a run) so that tuning the defaults does not move these cases.
    config = ("matching:\n  prior: -3.0\n  name:\n    exact: 5.0\n    legal_form_same: 0.0\n"
              "    legal_form_different: 0.0\n")
    args = ["--config", str(write(tmp_path, "abm.yaml", config)), "match",
            "--accounts", str(write(tmp_path, "accounts.csv", accounts)),
            "--people", str(write(tmp_path, "people.csv", people)), "--out", str(tmp_path / "matches.csv"), *extra]
    return runner.invoke(app, args)


def read_out(tmp_path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((tmp_path / "matches.csv").read_text(encoding="utf-8"))))


def test_abm_match_writes_one_row_per_person(tmp_path: Path) -> None:
    result = run_match(tmp_path, ACCOUNTS, PEOPLE)
    assert result.exit_code == 0, result.output
    assert "3 accounts, 4 people: 1 auto, 1 review, 1 none, 1 crm" in result.output
    rows = read_out(tmp_path)
    assert list(rows[0]) == ["person_id", "account_id", "account_name", "decision", "confidence", "method", "reason"]
    assert [(r["person_id"], r["account_id"], r["decision"]) for r in rows] == [
        ("L1", "A1", "auto"), ("L2", "A3", "review"), ("C1", "A1", "crm"), ("L3", "", "none")]
    assert rows[0]["reason"] == "domain acme.com = acme.com; name acme = acme; country US"


def test_explain_adds_signals_and_runner_up(tmp_path: Path) -> None:
    result = run_match(tmp_path, ACCOUNTS, "id,company,email\nL1,Acme,x@gmail.com\nL2,Acme Europe,y@acme.de\n",
                       "--explain")
    assert result.exit_code == 0, result.output
    first, second = read_out(tmp_path)
    assert first["signals"] == "name=exact(+5)"
    assert first["runner_up_account_id"] == "A2" and first["candidates"] == "2"
    assert second["account_id"] == "A2" and second["signals"].startswith("domain=exact(+6); name=exact(+5)")


def test_bad_rows_are_listed_and_the_file_is_still_matched(tmp_path: Path) -> None:
    people = "id,company,email\n" + "".join(f",Nameless {i},\n" for i in range(25)) + "L1,Acme,jane@acme.com\n"
    result = run_match(tmp_path, ACCOUNTS, people.encode() + b"L2,Soci\xe9t\xe9,\n", "--problems",
                       str(tmp_path / "problems.csv"))
    assert result.exit_code == 0, result.output
    assert "26 row problem(s): 25 row(s) skipped, 1 warning(s)" in result.output
    assert "people.csv line 2: error: empty id; skipped" in result.output
    assert "... and 6 more; all of them are in" in result.output
    assert [r["person_id"] for r in read_out(tmp_path)] == ["L1", "L2"]
    listed = list(csv.DictReader((tmp_path / "problems.csv").open(encoding="utf-8")))
    assert len(listed) == 26 and listed[-1]["id"] == "L2" and "Windows-1252" in listed[-1]["problem"]


def test_unreadable_files_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    result = run_match(tmp_path, "name\nAcme\n", PEOPLE)
    assert result.exit_code == 2
    assert "accounts.csv: missing column 'id'" in result.output
    missing = runner.invoke(app, ["match", "--accounts", str(tmp_path / "nope.csv"), "--people",
                                  str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.csv")])
    assert missing.exit_code == 2 and "cannot read the accounts file" in missing.output
