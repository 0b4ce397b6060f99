"""The storage's cached column lists stay true to the tables through every schema change, and a
batch of writes keeps what ran before an error, as statements run one by one would."""

from __future__ import annotations

from sandbox.storage import Storage


def test_column_cache_follows_add_column_and_schema_statements() -> None:
    storage = Storage()
    assert storage.columns("t") == []  # no table yet: not remembered as having no columns
    storage.create_table("t", {"k": "TEXT", "n": "REAL"}, key="k")
    assert storage.columns("t") == ["k", "n"]
    assert storage.table_columns("t").types == {"k": "TEXT", "n": "REAL"}
    storage.add_column("t", "when", "INTEGER")
    assert storage.columns("t") == ["k", "n", "when"]
    storage.execute('ALTER TABLE "t" ADD COLUMN "raw" TEXT')
    assert storage.table_columns("t").names == ("k", "n", "when", "raw")
    assert storage.table_columns("t").select_list == '"k", "n", "when", "raw"'
    storage.execute('DROP TABLE "t"')
    assert storage.columns("t") == []


def test_batch_commits_the_writes_made_before_an_error() -> None:
    storage = Storage()
    storage.create_table("t", {"k": "TEXT"}, key="k")
    try:
        with storage.batched():
            storage.insert_many("t", ["k"], [["a"]])
            storage.insert_many("t", ["k"], [["a"]])  # a duplicate key fails this statement only
    except Exception as exc:  # noqa: BLE001 - the error is the point
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("the duplicate key should have failed")
    assert storage.fetchall('SELECT "k" FROM "t"') == [("a",)]
    with storage.batched():  # no transaction was left open
        storage.insert_many("t", ["k"], [["b"]])
    assert storage.fetchall('SELECT "k" FROM "t" ORDER BY 1') == [("a",), ("b",)]
