"""Scheduled meetings whose end has passed become held meetings, without the CRM record changing.

A pull classifies a meeting by the clock: ``meeting_scheduled`` while its end is ahead,
``meeting_completed`` once it has passed (connectors.activity_rules). Nobody edits a meeting
for having taken place, so an incremental pull never reads it again: left alone, a meeting
pulled the day before it happened would stay "scheduled" (12 points, not 20) for ever, and
the store would disagree with a full resync. Each pull therefore completes, in the store, the
meetings of its CRM that ended by the pull's start, and stamps them changed so that the next
score stage rescores their accounts and people.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from store.activity_types import team_of
from store.schema import MEETINGS_SCHEDULED, Activity

HELD = "meeting_completed"


def complete_held_meetings(conn: Connection, crm: str, now: datetime) -> int:
    """Mark ``crm``'s scheduled meetings that ended by ``now`` as held; returns how many."""
    statement = (
        update(Activity)
        .where(MEETINGS_SCHEDULED, Activity.crm == crm, Activity.ends_at <= now)
        .values(activity_type=HELD, team=team_of(HELD), changed_at=now)
        .execution_options(synchronize_session=False)
    )
    return conn.execute(statement).rowcount or 0
