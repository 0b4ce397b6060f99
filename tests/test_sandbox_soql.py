"""SOQL through simple-salesforce: paging, queryAll, operators, date literals, malformed queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.clients import simple_salesforce
from sandbox.runner import SandboxHandle

ROWS = 4500


@pytest.fixture(scope="module")
def dataset(sandbox: SandboxHandle) -> tuple[Salesforce, str]:
    """4,500 accounts tagged with a unique BillingCity, loaded with one Bulk 2.0 insert."""
    sf = simple_salesforce(sandbox)
    city = "c" + uuid.uuid4().hex[:12]
    industries = ["Software", "Retail", None, "Banking"]
    records = []
    for i in range(ROWS):
        record = {"Name": f"Acc {i:05d}", "BillingCity": city, "NumberOfEmployees": str(i)}
        if industries[i % 4]:
            record["Industry"] = industries[i % 4]
        records.append(record)
    records[7]["Name"] = "O'Brien & Sons"
    result = sf.bulk2.Account.insert(records=records, wait=0.05)
    assert result[0]["numberRecordsProcessed"] == ROWS and result[0]["numberRecordsFailed"] == 0
    return sf, city


def ids(sf: Salesforce, soql: str, include_deleted: bool = False) -> list[str]:
    return [r["Name"] for r in sf.query_all_iter(soql, include_deleted=include_deleted)]


def test_paging_across_2000_row_pages(dataset, sandbox: SandboxHandle) -> None:
    sf, city = dataset
    sandbox.request_log.clear()
    first = sf.query(f"SELECT Id, Name FROM Account WHERE BillingCity = '{city}' ORDER BY Name")
    assert first["totalSize"] == ROWS and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    names = [r["Name"] for r in sf.query_all_iter(f"SELECT Name FROM Account WHERE BillingCity = '{city}' "
                                                  "ORDER BY Name")]
    assert len(names) == ROWS and len(set(names)) == ROWS and names == sorted(names)
    assert sandbox.request_log.count(method="GET", path="/query") == 1 + 3  # first page alone, then 3 pages


def test_batch_size_header(dataset) -> None:
    sf, city = dataset
    page = sf.query(f"SELECT Id FROM Account WHERE BillingCity = '{city}'",
                    headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(page["records"]) == 500
    more = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert len(more["records"]) == 500


def test_count_and_limit_offset(dataset) -> None:
    sf, city = dataset
    assert sf.query(f"SELECT COUNT() FROM Account WHERE BillingCity = '{city}'")["totalSize"] == ROWS
    page = sf.query(f"SELECT Name FROM Account WHERE BillingCity = '{city}' ORDER BY Name LIMIT 3 OFFSET 2")
    assert [r["Name"] for r in page["records"]] == ["Acc 00002", "Acc 00003", "Acc 00004"]


def test_operators(dataset) -> None:
    sf, city = dataset
    base = f"SELECT Name FROM Account WHERE BillingCity = '{city}' AND "

    def count(cond: str) -> int:
        return sf.query(f"SELECT COUNT() FROM Account WHERE BillingCity = '{city}' AND {cond}")["totalSize"]

    assert count("NumberOfEmployees < 10") == 10
    assert count("NumberOfEmployees >= 4490") == 10
    assert count("NumberOfEmployees != 3") == ROWS - 1
    assert count("Industry = 'software'") == ROWS // 4  # case-insensitive like Salesforce
    assert count("Industry = null") == ROWS // 4
    assert count("Industry != null") == ROWS - ROWS // 4
    assert count("Industry != 'Retail'") == ROWS - ROWS // 4  # != matches nulls in SOQL
    assert count("Industry IN ('Retail', 'Banking')") == ROWS // 2
    assert count("Industry NOT IN ('Retail', 'Banking')") == ROWS // 2  # includes nulls
    assert count("NOT (Industry = 'Retail')") == ROWS - ROWS // 4
    assert count("(Industry = 'Retail' OR Industry = 'Banking') AND NumberOfEmployees < 8") == 4
    assert count("Name LIKE 'Acc 0001%'") == 10
    assert count("Name LIKE 'O\\'Brien%'") == 1
    assert [r["Name"] for r in sf.query(base + "Name = 'O\\'Brien & Sons'")["records"]] == ["O'Brien & Sons"]


def test_order_by_nulls_and_several_fields(dataset) -> None:
    sf, city = dataset
    soql = (f"SELECT Name, Industry FROM Account WHERE BillingCity = '{city}' AND NumberOfEmployees < 8 "
            "ORDER BY Industry DESC NULLS LAST, NumberOfEmployees ASC")
    rows = [(r["Industry"], r["Name"]) for r in sf.query(soql)["records"]]
    assert [i for i, _ in rows] == ["Software", "Software", "Retail", "Retail", "Banking", "Banking", None, None]
    assert rows[0][1] == "Acc 00000" and rows[1][1] == "Acc 00004"
    first = sf.query(soql.replace("DESC NULLS LAST", "ASC NULLS FIRST"))["records"][0]
    assert first["Industry"] is None


def test_query_all_returns_deleted_rows(sandbox: SandboxHandle) -> None:
    sf = simple_salesforce(sandbox)
    name = "del" + uuid.uuid4().hex[:8]
    keep = sf.Account.create({"Name": name})["id"]
    gone = sf.Account.create({"Name": name})["id"]
    sf.Account.delete(gone)
    live = sf.query(f"SELECT Id, IsDeleted FROM Account WHERE Name = '{name}'")["records"]
    assert [r["Id"] for r in live] == [keep]
    every = sf.query(f"SELECT Id, IsDeleted FROM Account WHERE Name = '{name}' ORDER BY IsDeleted",
                     include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in every] == [(keep, False), (gone, True)]


def test_datetime_and_date_literals(sandbox: SandboxHandle) -> None:
    sf = simple_salesforce(sandbox)
    name = "dt" + uuid.uuid4().hex[:8]
    created = sf.Opportunity.create({"Name": name, "StageName": "Prospecting", "CloseDate": "2026-01-15"})["id"]
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def found(cond: str) -> bool:
        rows = sf.query(f"SELECT Id FROM Opportunity WHERE Name = '{name}' AND {cond}")["records"]
        return [r["Id"] for r in rows] == [created]

    assert found(f"CreatedDate > {earlier}") and not found(f"CreatedDate > {later}")
    assert found("CreatedDate > 2026-01-01T00:00:00Z")
    assert found("CreatedDate = TODAY") and not found("CreatedDate = YESTERDAY")
    assert found("CreatedDate = LAST_N_DAYS:3") and found("CreatedDate > YESTERDAY")
    assert found("CloseDate = 2026-01-15") and found("CloseDate < 2026-02-01") and not found("CloseDate > 2026-01-15")
    assert not found("CloseDate = NEXT_N_DAYS:5")


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id, Account.Name FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Type = 'c'", "MALFORMED_QUERY"),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account)", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = :name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE CreatedDate > THIS_FISCAL_QUARTER", "MALFORMED_QUERY"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2026-01-01", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Account WHERE CreatedDate > '2026-01-01T00:00:00Z'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = 'ten'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_malformed_queries(sandbox: SandboxHandle, soql: str, code: str) -> None:
    sf = simple_salesforce(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    assert err.value.content[0]["errorCode"] == code
    assert err.value.content[0]["message"]


def test_bad_query_locator(sandbox: SandboxHandle) -> None:
    sf = simple_salesforce(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more("/services/data/v59.0/query/01gXXXX-2000", identifier_is_url=True)
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
