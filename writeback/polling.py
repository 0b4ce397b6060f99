"""How often a writer checks on work a CRM does in the background (a Salesforce Bulk job, a HubSpot import)."""

from __future__ import annotations

from collections.abc import Iterator

POLL_WAIT_SOON_S = 2.0
POLL_SOON_FOR_S = 60.0
POLL_WAIT_MAX_S = 30.0


def poll_waits(first: float, longest: float = POLL_WAIT_MAX_S, soon: float = POLL_WAIT_SOON_S,
               soon_for: float = POLL_SOON_FOR_S) -> Iterator[float]:
    """The waits before each status check: ``first``, then doubling, at most ``soon`` for the first
    ``soon_for`` seconds, then at most ``longest``.

    The run waits on the job: a check that comes late is time lost by the whole run. Doubling all the
    way found a job done after 8.1 s at 15.5 s (the L org's Account job); checking every 2 s during the
    first minute finds any job within 2 s of its end, for one API call every 2 s (Salesforce counts calls
    per day, in the hundreds of thousands; HubSpot allows 100-190 per 10 s). A job that takes minutes is
    then checked ever less often.
    """
    delay, waited = first, 0.0
    while True:
        yield delay
        waited += delay
        delay = min(delay * 2, soon if waited < soon_for else longest)
