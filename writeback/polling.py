"""How often a writer checks on work a CRM does in the background (a Salesforce Bulk job, a HubSpot import)."""

from __future__ import annotations

from collections.abc import Iterator

# (checked for this long, at most this long between checks), in order; past the last, at most ``longest``.
POLL_STEPS: tuple[tuple[float, float], ...] = ((20.0, 1.0), (60.0, 2.0))
POLL_WAIT_MAX_S = 30.0


def poll_waits(first: float, longest: float = POLL_WAIT_MAX_S,
               steps: tuple[tuple[float, float], ...] = POLL_STEPS) -> Iterator[float]:
    """The waits before each status check: ``first``, then doubling, at most 1 s apart for the first 20 s,
    2 s apart until a minute, then at most ``longest``.

    The run waits on the job: a check that comes late is time lost by the whole run. Doubling all the
    way found a job done after 8.1 s at 15.5 s (the L org's Account job). An incremental run's jobs are
    done within seconds (the L org's 1% increment: 34,000 Accounts in 3.5-6.2 s, then 46,000 Contacts),
    and the Contact job waits for the Account job: checked every 2 s, each is seen a second after its end
    on average; checked every second, half a second. That costs a call a second while it lasts (Salesforce counts
    calls per day, in the hundreds of thousands; HubSpot allows 100-190 per 10 s). A job that takes minutes
    is then checked ever less often.
    """
    delay, waited = first, 0.0
    while True:
        yield delay
        waited += delay
        cap = next((most for until, most in steps if waited < until), longest)
        delay = min(delay * 2, cap)
