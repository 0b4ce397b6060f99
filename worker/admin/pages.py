"""The admin web page: server-rendered HTML (Jinja2, autoescaped) plus a little vanilla JS.

Account names, titles, reasons and error messages come from the CRMs, so every value goes
through Jinja2's autoescaping; nothing is marked safe except JSON produced by ``tojson``. The
page needs no build step and loads nothing from elsewhere: styles, script and charts (inline
SVG computed in :mod:`worker.admin.charts`) are all served by this app.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from config import AbmConfig
from store.runs import COUNT_KEYS
from store.schema import CRMS
from worker.admin import charts, queries
from worker.admin.auth import SESSION_COOKIE, AdminAuth
from worker.admin.redact import Redactor
from worker.triggers import active_run

log = logging.getLogger("abm.admin")

TEMPLATES = Path(__file__).parent / "templates"
MAX_LOGIN_BODY = 8 * 1024
LIVE_REFRESH_HEADER = "x-abm-refresh"  # sent by admin.js while it follows a run

ALIGNMENT_LABELS = {
    "aligned_high": "Both high",
    "aligned_low": "Both low",
    "marketing_high_sales_low": "Marketing high, sales low",
    "sales_high_marketing_low": "Sales high, marketing low",
}
TREND_LABELS = {"surging": "▲▲ surging", "rising": "▲ rising", "steady": "● steady", "cooling": "▼ cooling"}
CRM_NAMES = {"salesforce": "Salesforce", "hubspot": "HubSpot"}
GRADE_NAMES = {"4": "Grade 4 (best)", "3": "Grade 3", "2": "Grade 2", "1": "Grade 1 (lowest)",
               "ungraded": "Not graded"}
GRADE_CSS = {"4": "grade-4", "3": "grade-3", "2": "grade-2", "1": "grade-1", "ungraded": "grade-none"}
HISTORY_SERIES = (
    ("engagement", "Engagement", "s-engagement"),
    ("fit", "Fit", "s-fit"),
    ("sales_activity", "Sales activity", "s-sales"),
    ("marketing", "Marketing", "s-marketing"),
)


def _when(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_short(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _person_name(person: dict[str, Any]) -> str:
    name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p)
    return name or person.get("email") or person.get("crm_id") or "?"


def safe_next(target: str | None) -> str:
    """Only paths of this app: a login must never redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=_when, when_short=_when_short, duration=_duration, number=_number, person_name=_person_name)
    env.globals.update(alignment_labels=ALIGNMENT_LABELS, grade_names=GRADE_NAMES, crm_names=CRM_NAMES,
                       trend_labels=TREND_LABELS, grade_css=GRADE_CSS, count_keys=COUNT_KEYS, crms=CRMS)
    return env


class AdminPages:
    def __init__(self, engine: Engine, config: AbmConfig, auth: AdminAuth, redactor: Redactor) -> None:
        self.engine = engine
        self.config = config
        self.auth = auth
        self.redactor = redactor
        self.env = make_environment()

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.dashboard, methods=["GET"]),
            Route("/runs", self.runs, methods=["GET"]),
            Route("/runs/{run_id:int}", self.run, methods=["GET"]),
            Route("/accounts", self.accounts, methods=["GET"]),
            Route("/accounts/{account_id:int}", self.account, methods=["GET"]),
        ]

    # -- signing in ------------------------------------------------------------------------
    def login_page(self, conn: HTTPConnection, status: int = 401, failed: bool = False) -> Response:
        """The answer to any page request without a valid login: 401 with the sign-in form."""
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        next_path = safe_next(conn.query_params.get("next") if conn.url.path == "/login" else target)
        return self.render("login.html", status, next_path=next_path, failed=failed)

    def login_form(self, request: Request) -> Response:
        return self.login_page(request, status=200)

    async def login(self, request: Request) -> Response:
        body = await request.body()
        form = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        next_path = safe_next((form.get("next") or ["/"])[0])
        if not token or not self.auth.token_matches(token):
            client = request.client.host if request.client else "?"
            log.warning("admin sign-in refused from %s (wrong token)", client)
            return self.render("login.html", 401, next_path=next_path, failed=True)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(SESSION_COOKIE, self.auth.new_session(), max_age=self.auth.session_seconds,
                            path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- pages ---------------------------------------------------------------------------------
    def _crm_choices(self) -> list[str]:
        enabled = [crm for crm in CRMS if getattr(self.config, crm).enabled]
        return enabled or list(CRMS)

    def dashboard(self, request: Request) -> Response:
        # While a run is in progress the script polls for the runs only: the portfolio views read
        # every score (a second on a large store) and only change when the run has finished.
        runs_only = request.headers.get(LIVE_REFRESH_HEADER) == "runs"
        active = active_run(self.engine)
        context: dict[str, Any] = {
            "active": {"id": active[0], "state": active[1]} if active else None,
            "runs": self.redactor.deep(queries.runs_page(self.engine, 10).runs),
            "crm_choices": self._crm_choices(),
            "portfolio": None if runs_only else self._portfolio(),
        }
        return self.render("dashboard.html", nav="dashboard", **context)

    def _portfolio(self) -> dict[str, Any]:
        alignment = self.config.scoring.alignment
        grades = queries.grade_distribution(self.engine)
        points = queries.alignment_points(self.engine)
        return {
            "grades": charts.bar_chart([(label, n, GRADE_CSS[label]) for label, n in grades.items()
                                        if label != "ungraded" or n]),
            "scatter": charts.scatter(points, "sales_activity", "marketing", alignment.sales_high_points,
                                      alignment.marketing_high_points, queries.DISAGREEING),
            "alignment_counts": queries.alignment_counts(self.engine),
            "gaps": queries.alignment_gaps(self.engine),
            "surging": queries.surging_accounts(self.engine),
        }

    def runs(self, request: Request) -> Response:
        before = request.query_params.get("before", "")
        page = queries.runs_page(self.engine, 50, int(before) if before.isdigit() else None)
        active = active_run(self.engine)
        return self.render("runs.html", nav="runs", runs=self.redactor.deep(page.runs),
                           next_before=page.next_before, active=active is not None)

    def run(self, request: Request) -> Response:
        run = queries.run_with_errors(self.engine, request.path_params["run_id"])
        if run is None:
            return self.render("not_found.html", 404, nav="runs", what=f"Run {request.path_params['run_id']}")
        return self.render("run.html", nav="runs", run=self.redactor.deep(run))

    def accounts(self, request: Request) -> Response:
        text = request.query_params.get("q", "")[:200]
        return self.render("accounts.html", nav="accounts", q=text, accounts=queries.find_accounts(self.engine, text))

    def account(self, request: Request) -> Response:
        detail = queries.account_detail(self.engine, request.path_params["account_id"])
        if detail is None:
            return self.render("not_found.html", 404, nav="accounts",
                               what=f"Account {request.path_params['account_id']}")
        chart = charts.line_chart(detail["history"], HISTORY_SERIES)
        return self.render("account.html", nav="accounts", d=detail, chart=chart)
