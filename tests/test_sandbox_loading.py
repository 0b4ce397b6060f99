"""Bulk loading of a generated org: rows are stored exactly as the per-value conversions store them,
and the loading shortcuts (deferred indexes, ids already in 18-character form)
change nothing but speed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.app import SCRATCH_FILE, Sandbox
from sandbox.hubspot.portal import AUDIT_PROPERTIES
from sandbox.hubspot.values import iso_ms, parse_timestamp
from sandbox.hubspot.values import python_to_storage as hs_python_to_storage
from sandbox.org_loader import LARGE_ORG_ROWS, is_large, load_hubspot, load_salesforce
from sandbox.salesforce.loading import checked_id, converter
from sandbox.salesforce.schema import SfField
from sandbox.salesforce.values import python_to_storage
from sandbox.seed import HUBSPOT_OBJECT_TYPES, SALESFORCE_OBJECTS, OrgSize, generate
from sandbox.storage import Storage
from store.ids import InvalidSalesforceId, to_18

AS_OF = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SIZE = OrgSize(accounts=60, leads=200, contacts=200, activities=2_000, users=6, campaigns=4)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sandbox, dict[str, list[dict]], dict[str, list[dict]]]:
    """A sandbox loaded from the generator, with the generator's records kept to compare against."""
    generated = generate(seed=5, size=SIZE, as_of=AS_OF)
    sf = {o: list(generate(seed=5, size=SIZE, as_of=AS_OF).salesforce.records(o)) for o in SALESFORCE_OBJECTS}
    hs = {o: list(generate(seed=5, size=SIZE, as_of=AS_OF).hubspot.records(o)) for o in HUBSPOT_OBJECT_TYPES}
    sandbox = Sandbox(Path(tmp_path_factory.mktemp("loading")))
    load_salesforce(sandbox.salesforce.org, generated)
    load_hubspot(sandbox.hubspot, generated)
    yield sandbox, sf, hs
    sandbox.close()


def test_salesforce_rows_hold_what_python_to_storage_gives(loaded) -> None:
    sandbox, sf, _ = loaded
    org = sandbox.salesforce.org
    for object_name, records in sf.items():
        obj = org.object(object_name)
        assert records, object_name
        for record in records:
            stored = org.row(obj, record["Id"])
            assert stored is not None, (object_name, record["Id"])
            for key, value in record.items():
                f = obj.field(key)
                expected = to_18(value) if key == "Id" else python_to_storage(f, value)
                assert stored[f.name] == expected, (object_name, key, value)
            if "CreatedById" not in record:
                assert stored["CreatedById"] == stored["LastModifiedById"] == org.integration_user_id
            assert stored["SystemModstamp"] == stored["LastModifiedDate"]
            for f in obj.fields.values():
                if f.type == "boolean":
                    assert stored[f.name] in (0, 1)
            if object_name in ("Lead", "Contact", "User"):
                assert stored["Name"] == " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)


def test_hubspot_rows_hold_what_python_to_storage_gives(loaded) -> None:
    sandbox, _, hs = loaded
    portal = sandbox.hubspot.portal
    for object_type, records in hs.items():
        obj = portal.object_type(object_type)
        stored_rows = portal.rows_by_ids(obj, [int(r["id"]) for r in records])
        assert len(stored_rows) == len(records), object_type
        for record in records:
            stored = stored_rows[int(record["id"])]
            for name, value in record["properties"].items():
                if name in AUDIT_PROPERTIES or (object_type == "contacts" and name == "email"):
                    continue
                assert stored[name] == hs_python_to_storage(obj.properties[name], value), (object_type, name)
            assert stored[obj.created_property] == parse_timestamp(record["createdAt"])
            assert all(stored[m] == parse_timestamp(record["updatedAt"]) for m in obj.modified_properties)
            if object_type == "contacts" and record["properties"].get("email"):
                assert stored["email"] == record["properties"]["email"].strip().lower()


def test_loaded_tables_have_every_index_back(loaded) -> None:
    sandbox, _, _ = loaded
    fresh = Sandbox(sandbox.directory)
    try:
        wanted = set(fresh.storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    finally:
        fresh.close()
    assert set(sandbox.storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'")) == wanted


@pytest.mark.parametrize("raw", [
    "0010S0000000042QAA",  # right suffix: kept as it is
    "0010s0000000042qaa",  # letter case changed: refused
    "00Q0S0000000042",  # 15 characters: suffix added
    "003aBcDeFgHiJkLMNO",  # wrong suffix: refused
    "00T0S0000000000uaa",  # lower-case suffix: upper-cased
])
def test_checked_id_agrees_with_to_18(raw: str) -> None:
    try:
        expected = to_18(raw)
    except InvalidSalesforceId as exc:
        with pytest.raises(InvalidSalesforceId) as raised:
            checked_id(raw)
        assert str(raised.value) == str(exc)
    else:
        assert checked_id(raw) == expected


@pytest.mark.parametrize("raw", ["not an id", "0010S0000000042QA", "0010S0000000042QA!", 42])
def test_checked_id_refuses_what_to_18_refuses(raw: object) -> None:
    with pytest.raises(InvalidSalesforceId):
        checked_id(raw)


@pytest.mark.parametrize(("field_type", "value"), [
    ("datetime", datetime(2025, 1, 2, 3, 4, 5, 678_900, tzinfo=UTC)),
    ("datetime", datetime.fromisoformat("2025-01-02T03:04:05+02:00")),
    ("datetime", "2025-01-02T03:04:05Z"),
    ("date", date(2024, 2, 29)),
    ("date", datetime(2024, 2, 29, 23, 0, tzinfo=UTC)),
    ("boolean", True), ("boolean", 0),
    ("int", 7.0), ("double", Decimal("12.50")), ("currency", "99.5"),
    ("string", 12), ("reference", "0010S0000000042QAA"),
])
def test_salesforce_converters_store_like_python_to_storage(field_type: str, value: object) -> None:
    f = SfField("X__c", field_type)
    assert converter(f)(value) == python_to_storage(f, value)


def test_deferred_indexes_rebuild_after_the_block_even_on_error() -> None:
    storage = Storage()
    storage.create_table("empty", {"k": "TEXT", "v": "TEXT"}, key="k")
    storage.create_index("empty", ["v"])
    storage.create_table("full", {"k": "TEXT", "v": "TEXT"}, key="k")
    storage.create_index("full", ["v"])
    storage.insert_many("full", ["k", "v"], [["a", "b"]])
    before = set(storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    with pytest.raises(RuntimeError), storage.deferred_indexes("empty", "full"):
        names = {r[0] for r in storage.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert names == {"ix_empty_k", "ix_full_k", "ix_full_v"}  # unique keys stay; a filled table is untouched
        raise RuntimeError("loader failed")
    assert set(storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'")) == before
    with pytest.raises(Exception, match="UNIQUE"), storage.deferred_indexes("empty"):
        storage.insert_many("empty", ["k", "v"], [["x", "1"], ["x", "2"]])


def test_scratch_storage_starts_empty_and_is_deleted_on_close(tmp_path: Path) -> None:
    path = tmp_path / "org.sqlite"
    path.write_bytes(b"left over by a killed run")
    storage = Storage(path, scratch=True)
    assert not storage.is_persistent
    storage.create_table("t", {"k": "TEXT"}, key="k")
    storage.insert_many("t", ["k"], [["a"]])
    assert storage.fetchall("SELECT k FROM t") == [("a",)] and path.exists()
    storage.close()
    assert not list(tmp_path.iterdir())


def test_only_large_orgs_go_to_a_scratch_file(tmp_path: Path) -> None:
    assert not is_large("S") and not is_large("m") and is_large("L")
    assert is_large(OrgSize(accounts=1, leads=1, contacts=1, activities=LARGE_ORG_ROWS, users=1, campaigns=1))
    sandbox = Sandbox(tmp_path, scratch=True)
    try:
        assert sandbox.storage.path == str(tmp_path / SCRATCH_FILE)
        load_salesforce(sandbox.salesforce.org, generate(seed=2, size=SIZE, as_of=AS_OF))
    finally:
        sandbox.close()
    assert not (tmp_path / SCRATCH_FILE).exists()
    kept = Sandbox(tmp_path, state_path=tmp_path / "kept.db", scratch=True)  # --state wins: the org is kept
    kept.close()
    assert (tmp_path / "kept.db").exists()


def test_deferred_unique_indexes_keep_the_first_of_duplicate_keys() -> None:
    storage = Storage()
    storage.create_table("t", {"k": "TEXT", "v": "TEXT"}, key="k")
    before = set(storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    with storage.deferred_indexes("t", unique_keeps_first=True):
        assert not storage.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")
        storage.executemany("INSERT OR IGNORE INTO t (k, v) VALUES (?, ?)",
                            [("a", "first"), ("b", "only"), ("a", "second"), (None, "x"), (None, "y")])
    assert set(storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'")) == before
    assert storage.fetchall("SELECT k, v FROM t ORDER BY rowid") == [
        ("a", "first"), ("b", "only"), (None, "x"), (None, "y")]


def test_associations_loaded_twice_are_stored_once_in_each_direction(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    try:
        portal = sandbox.hubspot.portal
        pairs = [("contacts", "1000001", "companies", "1000002"), ("contacts", 1000001, "companies", 1000002),
                 ("deals", "1000003", "companies", "1000002")]
        assert portal.load_associations(pairs) == 3
        assert [(a.to_id, a.type_ids) for a in portal.associations.targets("contacts", 1000001, "companies")] == [
            (1000002, (279,))]
        assert {a.to_id for a in portal.associations.targets("companies", 1000002, "contacts")} == {1000001}
        assert storage_rows(sandbox.storage, "hs_associations") == 4
    finally:
        sandbox.close()


def storage_rows(storage: Storage, table: str) -> int:
    return int(storage.fetchone(f'SELECT COUNT(*) FROM "{table}"')[0])


def hubspot_tables(storage: Storage) -> dict[str, list[tuple]]:
    """Every HubSpot table's rows (columns in name order), property definitions without their timestamps."""
    out = {}
    for (table,) in storage.fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'hs%'"):
        columns = sorted(storage.columns(table))
        rows = storage.fetchall(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}" '
                                'ORDER BY rowid')
        out[table] = [r[1:] for r in rows] if table == "hs_meta_properties" else rows  # (key, object)
    return out


def test_hubspot_seeded_by_a_worker_process_is_the_same_org(tmp_path: Path) -> None:
    from sandbox.org_loader import load_generated_org

    loaded = {}
    for parallel in (False, True):
        (tmp_path / str(parallel)).mkdir()
        sandbox = Sandbox(tmp_path / str(parallel))
        try:
            counts = load_generated_org(sandbox.salesforce.org, 4, SIZE, AS_OF, hubspot=sandbox.hubspot,
                                        parallel=parallel, work_dir=tmp_path)
            custom = sorted((o.name, p.name) for o in sandbox.hubspot.portal.schema.types.values()
                            for p in o.properties.values() if not p.hubspot_defined)
            indexes = sandbox.storage.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY 1")
            loaded[parallel] = (counts, hubspot_tables(sandbox.storage), custom, indexes)
        finally:
            sandbox.close()
    assert loaded[True] == loaded[False]
    assert loaded[True][2], "the generator's extra properties are registered in the serving process too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["False", "True"]  # the worker's file is gone


def test_a_failing_hubspot_worker_is_reported(tmp_path: Path) -> None:
    from sandbox.parallel_seed import BackgroundHubSpotSeed

    (tmp_path / "sandbox").mkdir()
    sandbox = Sandbox(tmp_path / "sandbox")
    try:
        worker = BackgroundHubSpotSeed(4, "XL", AS_OF, tmp_path)
        with pytest.raises(RuntimeError, match="(?s)worker process.*unknown org size"):
            worker.merge_into(sandbox.hubspot)
    finally:
        sandbox.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandbox"]


@pytest.mark.parametrize(("ms", "text"), [
    (1714558830123, "2024-05-01T10:20:30.123Z"), (1714521600000, "2024-05-01T00:00:00.000Z"),
    (-1, "1969-12-31T23:59:59.999Z"), (0, "1970-01-01T00:00:00.000Z"),
])
def test_hubspot_timestamps_are_served_in_its_form_and_read_back(ms: int, text: str) -> None:
    assert iso_ms(ms) == text and parse_timestamp(text) == ms


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_sandbox_seeded_in_one_crm_leaves_the_other_empty(crm: str) -> None:
    from sandbox.runner import run_sandbox

    with run_sandbox(seed=4, size=SIZE, as_of=AS_OF, crms=(crm,)) as handle:
        accounts = handle.sandbox.salesforce.org.storage.fetchone(
            f'SELECT count(*) FROM "{handle.sandbox.salesforce.org.object("Account").table}"')[0]
        portal = handle.hubspot_portal
        companies = len(portal.page(portal.object_type("companies"), 0, 10**9, False)[0])
    assert (accounts > 0, companies > 0) == (crm == "salesforce", crm == "hubspot")


def test_a_sandbox_kept_in_a_file_is_seeded_in_both_crms(tmp_path: Path) -> None:
    from sandbox.runner import run_sandbox

    with pytest.raises(ValueError, match="seeded in both"), run_sandbox(seed=4, size=SIZE, crms=("hubspot",),
                                                                         state_path=tmp_path / "state.db"):
        pass
