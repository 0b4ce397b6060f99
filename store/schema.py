"""The canonical tables.

Records pulled from a CRM are keyed by ``(crm, object, crm_id)`` (``object`` is the CRM's
own object name: ``Account``, ``Lead``, ``companies``...), soft deletes are a flag, and
fields the model has no column for are kept in ``extra`` rather than dropped, so a later
version can use them without a full resync.

``changed_at`` moves only when a field we read for scoring or matching changes, not when
the CRM's modification stamp moves because abm-sync itself wrote a score.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    literal,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONType, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CRMS = ("salesforce", "hubspot")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class CrmRecord:
    """Columns every record pulled from a CRM has."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))
    crm_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime | None]
    modified_at: Mapped[datetime | None]
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any] | None]
    synced_at: Mapped[datetime | None]
    changed_at: Mapped[datetime | None]


class Account(CrmRecord, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("crm", "object", "crm_id", name="uq_accounts_key"),
        Index("ix_accounts_crm_key", "crm", "crm_id"),  # a touch's account_crm_id names no object
        Index("ix_accounts_changed_at", "changed_at"),  # the accounts the match stage reads again
    )

    name: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    industry: Mapped[str | None] = mapped_column(String(255))
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    country: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    parent_crm_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(128))
    owner_crm_id: Mapped[str | None] = mapped_column(String(64))
    linked_salesforce_id: Mapped[str | None] = mapped_column(String(64))


class Person(CrmRecord, Base):
    """A lead or a contact: both are people whose engagement rolls up to an account."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("crm", "object", "crm_id", name="uq_people_key"),
        Index("ix_people_crm_key", "crm", "crm_id"),  # a touch's person_crm_id names no object
        Index("ix_people_email", "email"),
        Index("ix_people_changed_at", "changed_at"),  # what an incremental score stage rescores
        Index("ix_people_converted_account_crm_id", "converted_account_crm_id"),  # an account's converted leads
    )

    kind: Mapped[str] = mapped_column(String(16))  # "lead" or "contact"
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    title: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(255))
    industry: Mapped[str | None] = mapped_column(String(255))
    employees: Mapped[int | None] = mapped_column(Integer)
    account_crm_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str | None] = mapped_column(String(128))
    is_converted: Mapped[bool] = mapped_column(Boolean, default=False)
    converted_at: Mapped[datetime | None]
    converted_account_crm_id: Mapped[str | None] = mapped_column(String(64))
    converted_contact_crm_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(255))
    owner_crm_id: Mapped[str | None] = mapped_column(String(64))


class Opportunity(CrmRecord, Base):
    __tablename__ = "opportunities"
    __table_args__ = (UniqueConstraint("crm", "object", "crm_id", name="uq_opportunities_key"),)

    name: Mapped[str | None] = mapped_column(Text)
    account_crm_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stage: Mapped[str | None] = mapped_column(String(255))
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    amount: Mapped[float | None] = mapped_column(Float)
    close_date: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None]


class Campaign(CrmRecord, Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("crm", "object", "crm_id", name="uq_campaigns_key"),)

    name: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(255))


class CrmUser(CrmRecord, Base):
    __tablename__ = "crm_users"
    __table_args__ = (UniqueConstraint("crm", "object", "crm_id", name="uq_crm_users_key"),)

    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Activity(CrmRecord, Base):
    """One touchpoint: a task, call, email, meeting, campaign response or marketing event."""

    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("crm", "object", "crm_id", name="uq_activities_key"),
        Index("ix_activities_changed_at", "changed_at"),  # what an incremental score stage rescores
    )

    activity_type: Mapped[str] = mapped_column(String(64))  # canonical, see scoring's catalogue
    crm_type: Mapped[str | None] = mapped_column(String(255))
    team: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # A meeting's end: a ``meeting_scheduled`` whose end passes becomes ``meeting_completed`` without the CRM
    # record changing (store.held_meetings), so the end is kept rather than read again.
    ends_at: Mapped[datetime | None]
    person_crm_id: Mapped[str | None] = mapped_column(String(64), index=True)
    account_crm_id: Mapped[str | None] = mapped_column(String(64), index=True)
    campaign_crm_id: Mapped[str | None] = mapped_column(String(64))
    campaign_type: Mapped[str | None] = mapped_column(String(255))
    # The store ids of the person and account the CRM keys name, filled in by store.touch_refs once they
    # are known (NULL until then, and again whenever the key changes: see store.upsert): the score stage
    # reads millions of touches, and turning their string keys into entities took it 12 CPU s per run.
    person_ref: Mapped[int | None] = mapped_column(Integer, info={"resolved_from": "person_crm_id"})
    account_ref: Mapped[int | None] = mapped_column(Integer, info={"resolved_from": "account_crm_id"})


# The touches whose person or account is still to be resolved to a store id (store.touch_refs): a handful
# once resolved, read from these small indexes rather than by scanning every touch.
PERSON_UNRESOLVED = and_(Activity.person_ref.is_(None), Activity.person_crm_id.is_not(None))
ACCOUNT_UNRESOLVED = and_(Activity.account_ref.is_(None), Activity.account_crm_id.is_not(None))
# (led by the id, so that SQLite's planner, without statistics, prefers them to a range over every key)
Index("ix_activities_person_unresolved", Activity.person_ref, Activity.crm, Activity.person_crm_id,
      sqlite_where=PERSON_UNRESOLVED, postgresql_where=PERSON_UNRESOLVED)
Index("ix_activities_account_unresolved", Activity.account_ref, Activity.crm, Activity.account_crm_id,
      sqlite_where=ACCOUNT_UNRESOLVED, postgresql_where=ACCOUNT_UNRESOLVED)

# The meetings still to be held: store.held_meetings reads the ones whose end has passed from this small index
# rather than scanning every touch. The type is written into the statement, not bound: PostgreSQL's generic
# plan of a prepared statement cannot tell that a parameter meets the index's condition.
MEETINGS_SCHEDULED = Activity.activity_type == literal("meeting_scheduled", literal_execute=True)
Index("ix_activities_meetings_scheduled", Activity.crm, Activity.ends_at,
      sqlite_where=MEETINGS_SCHEDULED, postgresql_where=MEETINGS_SCHEDULED)

# The touches with no time, few: what the score stage counts (they score nothing, see
# worker.score_inputs.stream_activity_columns, whose condition this must stay for the index to serve it). An index
# on every touch's time served that count alone: 360 MB of the L org's store, kept up by every touch written.
UNTIMED = Activity.occurred_at.is_(None)
Index("ix_activities_untimed", Activity.id, sqlite_where=UNTIMED, postgresql_where=UNTIMED)

# The touches that name an account: what the matcher's recent-activity tie-breaker reads the latest of, from an
# index alone (see worker.match_stage.last_activity_by_account, whose condition this must stay for the index
# to serve it).
ACCOUNT_TOUCHES = and_(Activity.account_crm_id.is_not(None), Activity.is_deleted.is_(False))
Index("ix_activities_account_last", Activity.crm, Activity.account_crm_id, Activity.occurred_at,
      sqlite_where=ACCOUNT_TOUCHES, postgresql_where=ACCOUNT_TOUCHES)

# The deleted people, few: what the match stage takes off the count of every match per decision, and the score
# stage off the count of every person (see worker.match_stage.decision_counts and worker.score_subset.live_people,
# whose condition this must stay for the index to serve them).
DELETED_PEOPLE = Person.is_deleted.is_(True)
Index("ix_people_deleted", Person.id, sqlite_where=DELETED_PEOPLE, postgresql_where=DELETED_PEOPLE)


class Match(Base):
    """Which account a person belongs to, how sure we are, and why."""

    __tablename__ = "matches"
    __table_args__ = (
        Index("ix_matches_matched_at", "matched_at"),
        # the matches per decision counted from this index alone, and the people no account holds found through it
        Index("ix_matches_decision", "decision"),
    )

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # auto, review, none, pinned, crm
    method: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[dict[str, Any] | None]
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned_by: Mapped[str | None] = mapped_column(String(255))
    matched_at: Mapped[datetime | None]
    # What the person's matching fields were when matched (matching.inputs_key): an incremental
    # run rematches a changed person only when these differ, not for a new title.
    inputs_key: Mapped[str | None] = mapped_column(String(16))


class AccountLink(Base):
    """Cross-CRM identity: a HubSpot company that is the same business as a Salesforce account."""

    __tablename__ = "account_links"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    canonical_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    method: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    linked_at: Mapped[datetime | None]


class MatchFeatures(Base):
    """An account's matching features as the last match stage read them (see matching.feature_cache).

    A cache: ``digest`` says what they were read from, and a row whose digest no longer agrees with the
    account is read again. Dropping every row costs one full computation, nothing else.
    """

    __tablename__ = "match_features"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(32))
    features: Mapped[str] = mapped_column(Text)  # a JSON array (matching.feature_cache.dump)


class KeptCopy(Base):
    """Copies the worker keeps between runs of what it reads of a big table, as a few columns of numbers
    (see store.kept_copies): the score stage's ``touches``, ``people`` and ``titles`` (worker.kept_touches,
    worker.kept_people, worker.kept_titles) and the match stage's ``contacts`` (worker.kept_contacts).

    A cache: part 0 of a copy holds what it is of (when it was taken, how many rows, the schema revision,
    the names its codes stand for), parts 1.. the columns, a million rows each. Dropping every row costs
    one read of each table, nothing else.
    """

    __tablename__ = "kept_copies"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    header: Mapped[dict[str, Any] | None]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ScoreColumns:
    engagement: Mapped[float | None] = mapped_column(Float)
    sales_activity: Mapped[float | None] = mapped_column(Float)
    marketing: Mapped[float | None] = mapped_column(Float)
    fit: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[int | None] = mapped_column(Integer)
    predictive: Mapped[float | None] = mapped_column(Float)
    breadth: Mapped[float | None] = mapped_column(Float)
    velocity: Mapped[float | None] = mapped_column(Float)
    trend: Mapped[str | None] = mapped_column(String(32))
    alignment: Mapped[str | None] = mapped_column(String(32))


class Score(ScoreColumns, Base):
    """The current scores of one account or person, with the reasons behind them."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("entity_kind", "entity_id", name="uq_scores_entity"),
        # what an incremental writeback sends: the entities whose visible score changed since a time
        Index("ix_scores_rescored", "entity_kind", "scored_at", "entity_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16))  # "account" or "person"
    entity_id: Mapped[int] = mapped_column(BigInteger)
    reasons_text: Mapped[str | None] = mapped_column(Text)
    breakdown: Mapped[dict[str, Any] | None]
    model_version: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime | None]


class ScoreHistory(ScoreColumns, Base):
    """A daily snapshot, for trends and the history chart."""

    __tablename__ = "score_history"
    __table_args__ = (
        UniqueConstraint("entity_kind", "entity_id", "day", name="uq_score_history_day"),
        Index("ix_score_history_day", "day"),  # the snapshots past their keeping, deleted by each score stage
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity_kind: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)


class PredictiveModel(Base):
    """A trained predictive model, kept so a previous version can be restored."""

    __tablename__ = "predictive_models"
    __table_args__ = (UniqueConstraint("target", "version", name="uq_predictive_models_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))  # e.g. "account_won", "lead_converts"
    version: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    trained_at: Mapped[datetime]
    metrics: Mapped[dict[str, Any] | None]
    params: Mapped[dict[str, Any] | None]
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class ScoreState(Base):
    """What the last scoring of everyone learned from the whole population (fit model, percentile
    grade cutoffs), so an incremental run can score a few entities without loading everyone.

    One row per ``name``; ``config_hash`` is the scoring settings it was computed with (a state
    computed under other settings is not used)."""

    __tablename__ = "score_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    computed_at: Mapped[datetime]
    as_of: Mapped[int] = mapped_column(BigInteger)
    config_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]]


class WritebackState(Base):
    """The last values successfully written to one CRM record: ``{field: value as written}``.

    The writer diffs against this, not against what it computed last time, so a write
    that failed is retried rather than forgotten. One row per record, not per field: an
    incremental run reads and records the baseline of every record it writes, and an L org's
    records hold 24 million field values, which as rows took most of the writeback stage's time
    and most of the store's size. ``written_at`` and ``run_id`` are those of the record's last
    successful write.
    """

    __tablename__ = "writeback_state"
    __table_args__ = (UniqueConstraint("crm", "object", "crm_id", name="uq_writeback_state_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))
    crm_id: Mapped[str] = mapped_column(String(64))
    field_values: Mapped[dict[str, Any]]
    written_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(Integer)


class WritebackError(Base):
    __tablename__ = "writeback_errors"
    __table_args__ = (UniqueConstraint("crm", "object", "crm_id", name="uq_writeback_errors_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))
    crm_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[Any] | None]
    code: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime]
    last_failed_at: Mapped[datetime]
    next_retry_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(Integer)


class SyncCursor(Base):
    """Where the last committed pull of one object stopped: (timestamp, id), never past a run's start."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("crm", "object", name="uq_sync_cursors_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))
    cursor_ts: Mapped[datetime | None]
    cursor_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime]


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # incremental, full, resync, sync, writeback...
    trigger: Mapped[str] = mapped_column(String(32))  # schedule, cli, api
    state: Mapped[str] = mapped_column(String(32))  # queued, running, paused, succeeded, failed, cancelled
    options: Mapped[dict[str, Any] | None]
    counts: Mapped[dict[str, Any] | None]
    api_calls: Mapped[dict[str, Any] | None]
    stages: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]


class Lock(Base):
    """A lease-based lock, so two workers on one database never run at once."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(Integer)


CRM_RECORD_TABLES = {
    "accounts": Account.__table__,
    "people": Person.__table__,
    "opportunities": Opportunity.__table__,
    "campaigns": Campaign.__table__,
    "crm_users": CrmUser.__table__,
    "activities": Activity.__table__,
}
