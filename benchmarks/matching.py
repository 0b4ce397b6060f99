"""Lead-to-account matching: accuracy on the org generator's ground truth, and speed at scale.

For the M and L orgs of ``sandbox.seed`` (accounts, leads and contacts, as Salesforce rows), and
for a generated set of 1,000,000 leads against 200,000 accounts (``sandbox.seed.matching_set``),
prints the precision, recall and F1 of auto-matches, how much of the rest the review band holds,
leads/s and the peak memory of the process. A brute-force baseline (``rapidfuzz.process.extractOne``
over every account name, on a sample of leads) is printed beside the matcher on the same sample,
so the gain from blocking and from the extra signals (domains, geography, legal forms) shows.

    python -m benchmarks.matching                      # M, L and the 1M/200k set
    python -m benchmarks.matching --orgs M --big-leads 0 --baseline-sample 500   # quick look
    python -m benchmarks.matching --orgs M --big-leads 0 --list-wrong 20         # ...and wrong matches to study

Auto-matches are leads the matcher writes an account for: ``auto`` decisions, plus converted
leads, which keep the account they were converted to (``crm``). A match is right when the account
belongs to the lead's true company (duplicate accounts of a company count). Figures are printed
for open leads alone (the hard part) and for all leads. Targets (issue 6): precision >= 0.99 and
recall >= 0.97 on M and L; 1M leads against 200k accounts in <= 60 s wall on 2 cores, peak < 3 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import random
import resource
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz, process, utils

from config.matching import MatchingConfig
from matching import MatchResult, match_each
from matching.compiled import running_compiled
from matching.engine import NOTHING_TO_MATCH
from sandbox.seed import generate, matching_set
from store.records import AccountRecord, PersonRecord

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
BASELINE_CUTOFF = 90.0  # extractOne score (0-100) at or above which the baseline calls it a match


# -- Salesforce rows -> plain records (what connectors/ does into the store) ------------------------


def account_record(i: int, row: dict[str, Any]) -> AccountRecord:
    return AccountRecord(
        id=i, crm="salesforce", crm_id=row["Id"], name=row.get("Name"), website=row.get("Website"),
        country=row.get("BillingCountry"), state=row.get("BillingState"), city=row.get("BillingCity"),
        phone=row.get("Phone"), parent_crm_id=row.get("ParentId"), type=row.get("Type"),
        created_at=row.get("CreatedDate"), industry=row.get("Industry"), employees=row.get("NumberOfEmployees"),
    )


def lead_record(i: int, row: dict[str, Any]) -> PersonRecord:
    return PersonRecord(
        id=i, crm="salesforce", crm_id=row["Id"], kind="lead", first_name=row.get("FirstName"),
        last_name=row.get("LastName"), email=row.get("Email"), company=row.get("Company"),
        website=row.get("Website"), phone=row.get("Phone"), country=row.get("Country"), state=row.get("State"),
        city=row.get("City"), industry=row.get("Industry"), employees=row.get("NumberOfEmployees"),
        is_converted=bool(row.get("IsConverted")),
        converted_account_crm_id=row.get("ConvertedAccountId"),
    )


def contact_record(i: int, row: dict[str, Any]) -> PersonRecord:
    return PersonRecord(
        id=i, crm="salesforce", crm_id=row["Id"], kind="contact", first_name=row.get("FirstName"),
        last_name=row.get("LastName"), email=row.get("Email"), phone=row.get("Phone"),
        country=row.get("MailingCountry"), state=row.get("MailingState"), city=row.get("MailingCity"),
        account_crm_id=row.get("AccountId"),
    )


def records(rows: Iterable[dict[str, Any]], make: Callable[[int, dict[str, Any]], Any], start: int = 1) -> list:
    return [make(i, row) for i, row in enumerate(rows, start=start)]


# -- accuracy -------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Counts over a set of leads; precision and recall are of the written (auto) matches."""

    leads: int = 0
    with_account: int = 0
    written: int = 0
    written_right: int = 0
    review: int = 0
    review_right: int = 0  # review proposals of the lead's true account
    blank: int = 0  # leads with an account whose record holds no company name and no corporate domain

    @property
    def recall_informative(self) -> float:
        """Recall over the leads that carry something to match on (a name or a corporate domain)."""
        return self.written_right / (self.with_account - self.blank) if self.with_account > self.blank else 1.0

    @property
    def review_holds_informative(self) -> float:
        """review_holds, leaving out the leads no matcher could place (nothing to match on)."""
        rest = self.with_account - self.written_right - self.blank
        return self.review_right / rest if rest > 0 else 1.0

    @property
    def precision(self) -> float:
        return self.written_right / self.written if self.written else 1.0

    @property
    def recall(self) -> float:
        return self.written_right / self.with_account if self.with_account else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def review_holds(self) -> float:
        """Share of the leads with an account and no right written match that review proposes rightly."""
        rest = self.with_account - self.written_right
        return self.review_right / rest if rest else 1.0


class Truth:
    """What the evaluation needs of the generator's ground truth, kept small so the large run can drop the rest.

    A lead's match is right when the account belongs to the lead's true company (so a duplicate
    account of that company is right too), as ``GroundTruth.lead_matches`` defines it. Leads are
    known by their position in the list matched: one int each in an array, not a dict keyed by
    Salesforce id (a million of those weigh ~200 MB).
    """

    def __init__(self, truth: Any, leads: Sequence[PersonRecord]) -> None:
        codes: dict[str, int] = {}
        self.account_company = {a: codes.setdefault(k, len(codes)) for a, k in truth.company_of_account.items()}
        # company code + 1 for a lead whose company has an account, its negative when it has none, 0 when unknown
        self.lead_company = array("i", bytes(4 * len(leads)))
        lead_account, lead_company = truth.lead_account, truth.lead_company
        for i, lead in enumerate(leads):
            if lead.crm_id in lead_account:
                code = codes.setdefault(lead_company[lead.crm_id], len(codes)) + 1
                self.lead_company[i] = code if lead_account[lead.crm_id] else -code

    def has_account(self, lead: int) -> bool:
        return self.lead_company[lead] > 0

    def lead_matches(self, lead: int, account_id: str) -> bool:
        code = self.lead_company[lead]
        return code > 0 and self.account_company.get(account_id) == code - 1


_DECISIONS = ("auto", "crm", "review", "none", "pinned")
_CODE = {d: i for i, d in enumerate(_DECISIONS)}


class Outcomes:
    """What the evaluation reads of each result, filled as the matcher streams them: a few bytes a lead in
    columns rather than a million MatchResults (~1.1 KB each) held to the end. With ``keep_auto`` the auto
    results of open leads are kept whole too (for --list-wrong)."""

    def __init__(self, size: int, keep_auto: bool = False) -> None:
        self.decision = array("b", [-1]) * size  # -1: no result (yet)
        self.proposed = array("q", [0]) * size  # the account proposed (before a roll-up), 0 for none
        self.blank = array("b", [0]) * size  # the lead had nothing to match on
        self.auto: dict[int, MatchResult] | None = {} if keep_auto else None

    @classmethod
    def of(cls, leads: Sequence[PersonRecord], results: Iterable[MatchResult]) -> Outcomes:
        outcomes = cls(len(leads))
        for position, (lead, result) in enumerate(zip(leads, results, strict=True)):
            outcomes.add(position, lead, result)
        return outcomes

    def add(self, position: int, lead: PersonRecord, result: MatchResult) -> None:
        """The result of the lead at ``position`` among the leads (results may come in any order)."""
        if self.auto is not None and result.decision == "auto" and not lead.is_converted:
            self.auto[position] = result
        self.decision[position] = _CODE[result.decision]
        self.proposed[position] = result.matched_account_id or result.account_id or 0
        self.blank[position] = result.reason == NOTHING_TO_MATCH

    @property
    def missing(self) -> int:
        """Leads the matcher gave no result for (none, unless it lost some)."""
        return self.decision.count(-1)


def evaluate(leads: Sequence[PersonRecord], outcomes: Outcomes, account_crm_id: dict[int, str], truth: Truth,
             include: Callable[[PersonRecord], bool] = lambda p: True, picks: Iterable[int] | None = None
             ) -> Accuracy:
    """Score results against the ground truth (of the leads at ``picks`` only, when given)."""
    acc = Accuracy()
    auto, crm, review = _CODE["auto"], _CODE["crm"], _CODE["review"]
    for i in range(len(leads)) if picks is None else picks:
        if not include(leads[i]):
            continue
        acc.leads += 1
        has_account = truth.has_account(i)
        acc.with_account += has_account
        proposed = account_crm_id.get(outcomes.proposed[i])
        right = proposed is not None and has_account and truth.lead_matches(i, proposed)
        acc.blank += has_account and outcomes.blank[i]
        decision = outcomes.decision[i]
        if decision in (auto, crm):
            acc.written += 1
            acc.written_right += right
        elif decision == review:
            acc.review += 1
            acc.review_right += right
    return acc


def baseline(sample: Sequence[PersonRecord], accounts: Sequence[AccountRecord]) -> tuple[list[str | None], float]:
    """Brute force: the best-scoring account name for each lead's company, over all accounts."""
    names = [a.name or "" for a in accounts]
    choices = [utils.default_process(n) for n in names]
    started = time.perf_counter()
    out: list[str | None] = []
    for lead in sample:
        if lead.is_converted and lead.converted_account_crm_id:
            out.append(lead.converted_account_crm_id)  # the same courtesy the matcher gets
            continue
        query = utils.default_process(lead.company or "")
        best = process.extractOne(query, choices, scorer=fuzz.WRatio, processor=None,
                                  score_cutoff=BASELINE_CUTOFF) if query else None
        out.append(accounts[best[2]].crm_id if best else None)
    return out, time.perf_counter() - started


def evaluate_baseline(leads: Sequence[PersonRecord], picks: Sequence[int], proposed: Sequence[str | None],
                      truth: Truth, include: Callable[[PersonRecord], bool]) -> Accuracy:
    acc = Accuracy()
    for i, account in zip(picks, proposed, strict=True):
        if not include(leads[i]):
            continue
        acc.leads += 1
        has_account = truth.has_account(i)
        acc.with_account += has_account
        if account is not None:
            acc.written += 1
            acc.written_right += has_account and truth.lead_matches(i, account)
    return acc


# -- reporting ------------------------------------------------------------------------------------


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system, so what was dropped (the generator's
    rows) no longer counts in this process's RSS."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def rss_mb(pid: int | str = "self") -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return 0.0


def _smaps(pid: int) -> dict[str, float] | None:
    """Rss, Pss and Uss (private pages) of a process in MB, from /proc/<pid>/smaps_rollup (Linux)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            rows = (row.partition(":") for row in f)
            values = {k: int(v.split()[0]) / 1024 for k, _, v in rows if v.strip()[:1].isdigit()}
    except (OSError, ValueError):
        return None
    return {"rss": values.get("Rss", 0.0), "pss": values.get("Pss", 0.0),
            "uss": values.get("Private_Clean", 0.0) + values.get("Private_Dirty", 0.0)}


# Whether the kernel lists each thread's children (CONFIG_PROC_CHILDREN): a few small files to read per sample.
_THREAD_CHILDREN = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _children(pid: int) -> list[int]:
    """The direct children of ``pid``: from its threads' ``children`` lists where the kernel has them, else by
    reading every process's ``stat`` (about 10 ms a sample on a busy machine: 3 s of CPU over an L pipeline run,
    taken from the run it measures)."""
    found: set[int] = set()
    if _THREAD_CHILDREN:
        with contextlib.suppress(OSError):
            for thread in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{thread}/children") as f:
                    found.update(int(child) for child in f.read().split())  # a thread that ended meanwhile has none
        return sorted(found)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry))
    return sorted(found)


class MemorySampler(threading.Thread):
    """Samples this process and its children (the forked matching workers) from /proc while matching runs.

    Per process: the peak RSS, PSS (shared pages split between the processes sharing them) and USS (pages
    only that process holds); for the run: the peak of the sum of the processes' PSS, which is the physical
    memory the run occupies at that moment, each shared page counted once. RSS is read every ``interval``
    (cheap); PSS and USS (smaps_rollup walks every page: ~30 ms per GB, kernel time of this process) when the
    summed RSS reaches a new high by ``step`` or every ``pss_every`` seconds, and once at the end.
    """

    def __init__(self, interval: float = 0.5, step: float = 0.05, pss_every: float = 10.0,
                 exclude: frozenset[int] = frozenset()) -> None:
        """``exclude``: children that are not part of what is measured (the pipeline benchmark's sandbox)."""
        super().__init__(daemon=True)
        self.exclude = exclude
        self.interval, self.step, self.pss_every = interval, step, pss_every
        self.peaks: dict[str, dict[str, float]] = {}  # "this" / "worker": peak rss, pss, uss over samples
        self.peak_total_pss = 0.0
        self.peak_total_rss = 0.0
        self.samples = self.pss_samples = 0
        self.cost = 0.0  # CPU seconds this thread spent reading /proc
        self._pss_at = (0.0, 0.0)  # summed RSS and time of the last PSS sample
        self._stop_event = threading.Event()
        self.available = os.path.exists("/proc/self/smaps_rollup")

    def _peak(self, who: str, values: dict[str, float]) -> None:
        peak = self.peaks.setdefault(who, {"rss": 0.0, "pss": 0.0, "uss": 0.0})
        for k, v in values.items():
            peak[k] = max(peak[k], v)

    def sample(self, force_pss: bool = False) -> None:
        started = time.thread_time()
        me = os.getpid()
        processes = [("this", me), *(("worker", child) for child in _children(me) if child not in self.exclude)]
        rss = {pid: rss_mb(pid) for _, pid in processes}
        total_rss = sum(rss.values())
        for who, pid in processes:
            self._peak(who, {"rss": rss[pid]})
        self.peak_total_rss = max(self.peak_total_rss, total_rss)
        self.samples += 1
        if (force_pss or total_rss > self._pss_at[0] * (1 + self.step)
                or time.perf_counter() - self._pss_at[1] > self.pss_every):
            self._pss_at = (max(total_rss, self._pss_at[0]), time.perf_counter())
            total_pss = 0.0
            for who, pid in processes:
                m = _smaps(pid)
                if m is not None:
                    total_pss += m["pss"]
                    self._peak(who, m)
            self.peak_total_pss = max(self.peak_total_pss, total_pss)
            self.pss_samples += 1
        self.cost += time.thread_time() - started

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        if self.available:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.available:
            self._stop_event.set()
            self.join()
            self.sample(force_pss=True)


def reset_peak_rss() -> bool:
    """Restart this process's peak RSS (VmHWM) from its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mb() -> float:
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    return peak_mb()


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def line(label: str, acc: Accuracy, rate: float | None = None) -> str:
    speed = f"{rate:>10,.0f}" if rate is not None else f"{'':>10}"
    return (f"  {label:<34} {acc.leads:>8,} {acc.precision:>9.4f} {acc.recall:>7.4f} {acc.f1:>7.4f} "
            f"{acc.review_holds:>8.3f} {speed}")


HEADER = (f"  {'':<34} {'leads':>8} {'precision':>9} {'recall':>7} {'F1':>7} {'review':>8} {'leads/s':>10}\n"
          f"  {'':<34} {'':>8} {'(auto)':>9} {'(auto)':>7} {'':>7} {'holds':>8}")


def is_open(lead: PersonRecord) -> bool:
    return not lead.is_converted


def print_wrong(leads: Sequence[PersonRecord], auto: dict[int, MatchResult], accounts: Sequence[AccountRecord],
                truth: Truth, how_many: int, seed: int) -> None:
    """A random sample of wrong auto matches of open leads, with the reason the matcher gave: where to look next."""
    by_id = {a.id: a for a in accounts}
    wrong = [(leads[i], result) for i, result in sorted(auto.items())
             if not truth.lead_matches(i, by_id[result.matched_account_id or 0].crm_id)]
    picked = random.Random(seed).sample(wrong, min(how_many, len(wrong)))
    print(f"  {len(picked)} of {len(wrong):,} wrong auto matches (open leads):")
    for lead, result in picked:
        account = by_id[result.matched_account_id or 0]
        where = "/".join(v or "-" for v in (lead.country, lead.city))
        print(f"    {lead.company!r} <{lead.email or ''}> {where} -> {account.name!r} {account.website or ''} "
              f"{'/'.join(v or '-' for v in (account.country, account.city))}: {result.confidence:.3f} {result.reason}")


def report(title: str, accounts: list[AccountRecord], leads: list[PersonRecord], contacts: list[PersonRecord],
           truth: Truth, config: MatchingConfig, workers: int, sample_size: int, seed: int,
           list_wrong: int = 0) -> None:
    print(f"\n== {title}: {len(accounts):,} accounts, {len(leads):,} leads, {len(contacts):,} contacts ==")
    release_memory()
    generator_peak = peak_mb(resource.RUSAGE_CHILDREN)  # the generator's process: the only child so far
    before_rss = rss_mb()
    hwm_reset = reset_peak_rss()
    cpu_before = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    outcomes = Outcomes(len(leads), keep_auto=list_wrong > 0)
    with MemorySampler() as sampler:
        # counted as they come, in the order they are matched: the results are not all held (in a pipeline they
        # are written out the same way)
        for position, result in match_each(leads, accounts, config, contacts=contacts, workers=workers):
            outcomes.add(position, leads[position], result)
    elapsed = time.perf_counter() - started
    if outcomes.missing:
        raise SystemExit(f"the matcher gave no result for {outcomes.missing:,} of {len(leads):,} leads")
    own_cpu = cpu_s(resource.RUSAGE_SELF) - cpu_before[0]
    worker_cpu = cpu_s(resource.RUSAGE_CHILDREN) - cpu_before[1]
    rate = len(leads) / elapsed
    print(f"  matched in {elapsed:,.1f} s wall with {workers} process{'es' if workers > 1 else ''} "
          f"(index build included): {rate:,.0f} leads/s")
    print(f"  CPU: {own_cpu:,.1f} s in this process + {worker_cpu:,.1f} s in forked workers "
          f"(load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    own_peak = hwm_mb() if hwm_reset else peak_mb()
    # sampled: getrusage's peak over children counts the generator's process too
    worker_peak = sampler.peaks.get("worker", {}).get("rss", 0.0)
    print(f"  memory before matching: this process {before_rss:,.0f} MB RSS (the records to match and the ground "
          f"truth; the generator ran in a process of its own, which peaked at {generator_peak:,.0f} MB and is not "
          "counted below)")
    print(f"  peak RSS while matching: this process {own_peak:,.0f} MB{'' if hwm_reset else ' (since start)'}, "
          f"largest worker {worker_peak:,.0f} MB (RSS counts the pages a worker shares with this process in both)")
    if sampler.samples:
        this, worker = sampler.peaks.get("this", {}), sampler.peaks.get("worker")
        worker_text = (f"; workers: RSS {worker['rss']:,.0f}, PSS {worker['pss']:,.0f}, USS {worker['uss']:,.0f}"
                       if worker else "")
        print(f"  sampled from /proc every {sampler.interval} s ({sampler.samples} samples, {sampler.pss_samples} "
              f"with PSS; {sampler.cost:.1f} s CPU spent sampling, counted in this process's), peak MB: this "
              f"process RSS {this.get('rss', 0):,.0f}, PSS {this.get('pss', 0):,.0f}, USS {this.get('uss', 0):,.0f}"
              f"{worker_text}")
        print(f"  PEAK MEMORY of the run (peak of the sum of all processes' PSS: shared pages counted once): "
              f"{sampler.peak_total_pss:,.0f} MB (sum of RSS {sampler.peak_total_rss:,.0f} MB)")
    account_crm_id = {a.id: a.crm_id for a in accounts}
    print(HEADER)
    open_leads = evaluate(leads, outcomes, account_crm_id, truth, is_open)
    print(line("matcher, open leads", open_leads, rate))
    if any(lead.is_converted for lead in leads):
        print(line("matcher, all leads (*)", evaluate(leads, outcomes, account_crm_id, truth)))
        print("  (*) converted leads included: they keep the account they were converted to (decision crm)")
    print(f"  open leads with an account but no company name and no corporate domain (free mail, '[not provided]'): "
          f"{open_leads.blank:,} ({open_leads.blank / max(open_leads.with_account, 1):.1%}); without them recall is "
          f"{open_leads.recall_informative:.4f} and review holds {open_leads.review_holds_informative:.3f} of the rest")
    if list_wrong:
        print_wrong(leads, outcomes.auto or {}, accounts, truth, list_wrong, seed)
    if sample_size <= 0:
        return
    rng = random.Random(seed)
    picks = sorted(rng.sample(range(len(leads)), min(sample_size, len(leads))))
    sample = [leads[i] for i in picks]
    proposed, base_elapsed = baseline(sample, accounts)
    print(f"  side by side on a random sample of {len(sample):,} leads (open leads):")
    print(line("matcher (blocking + signals)", evaluate(leads, outcomes, account_crm_id, truth, is_open, picks),
               rate))
    print(line(f"extractOne WRatio>={BASELINE_CUTOFF:.0f}, all names", evaluate_baseline(leads, picks, proposed,
                                                                                        truth, is_open),
               len(sample) / base_elapsed))
    print(f"  (brute force for all {len(leads):,} leads would take {len(leads) * base_elapsed / len(sample):,.0f} s "
          f"in one process)")


def _org_records(size: str, seed: int) -> tuple[list[AccountRecord], list[PersonRecord], list[PersonRecord], Truth]:
    generated = generate(seed, size, AS_OF)
    sf = generated.salesforce
    accounts = records(sf.records("Account"), account_record)
    leads = records(sf.records("Lead"), lead_record)
    contacts = records(sf.records("Contact"), contact_record, start=len(leads) + 1)
    return accounts, leads, contacts, Truth(generated.truth, leads)


def _set_records(n_accounts: int, n_leads: int, seed: int) -> tuple[list[AccountRecord], list[PersonRecord], Truth]:
    generated = matching_set(seed, n_accounts, n_leads, AS_OF)
    accounts = records(generated.accounts, account_record)
    leads = records(generated.leads, lead_record)
    return accounts, leads, Truth(generated.org.truth, leads)


def generated_apart(make: Callable[..., Any], *args: Any) -> Any:
    """``make(*args)`` run in a forked process, its records sent back pickled.

    The generator's world (~1.8 GB for the 1M set, freed before matching) would otherwise leave this
    process's heap fragmented around the records: hundreds of MB still counted as resident, and pages
    that the forked matching workers copy as they read the records scattered among them. Received in
    one piece, the same records lie together. Where fork is not available they are made here.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return make(*args)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(make, args)


def org(size: str, seed: int, config: MatchingConfig, workers: int, sample_size: int, list_wrong: int = 0) -> None:
    started = time.perf_counter()
    accounts, leads, contacts, truth = generated_apart(_org_records, size, seed)
    print(f"\n(generated the {size} org in {time.perf_counter() - started:,.1f} s)")
    report(f"{size} org (seed {seed})", accounts, leads, contacts, truth, config, workers, sample_size, seed,
           list_wrong)


def big(n_accounts: int, n_leads: int, seed: int, config: MatchingConfig, workers: int, sample_size: int,
        list_wrong: int = 0) -> None:
    started = time.perf_counter()
    accounts, leads, truth = generated_apart(_set_records, n_accounts, n_leads, seed)
    print(f"\n(generated {n_leads:,} leads and {n_accounts:,} accounts in {time.perf_counter() - started:,.1f} s)")
    report(f"matching set (seed {seed})", accounts, leads, [], truth, config, workers, sample_size, seed, list_wrong)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", nargs="*", default=["M", "L"], help="org sizes to evaluate (S, M, L)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big-accounts", type=int, default=200_000)
    parser.add_argument("--big-leads", type=int, default=1_000_000, help="0 skips the large set")
    parser.add_argument("--workers", type=int, default=2, help="processes for matching (the machine has 2 cores)")
    parser.add_argument("--baseline-sample", type=int, default=1_000, help="leads the brute-force baseline scores")
    parser.add_argument("--list-wrong", type=int, default=0, help="print this many wrong auto matches per set")
    args = parser.parse_args(argv)
    config = MatchingConfig()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, matching core "
          f"{'compiled (mypyc)' if running_compiled() else 'run from source'}; wall-clock figures depend on what "
          "else runs on the machine (the load average is printed with each run)")
    for size in args.orgs:
        org(size, args.seed, config, args.workers, args.baseline_sample, args.list_wrong)
    if args.big_leads > 0:
        big(args.big_accounts, args.big_leads, args.seed, config, args.workers, min(args.baseline_sample, 300),
            args.list_wrong)


if __name__ == "__main__":
    main()
