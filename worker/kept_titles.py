"""The persona codes of every distinct job title, kept between runs: an incremental run classifies only the
titles it has not seen.

Scoring reads a persona, seniority and department from each person's title with the configured rules
(:mod:`scoring.personas`), once per distinct title: an L org's 1.8 million people hold 99,000 distinct titles,
1.6 s of regular expressions on every run that reads everyone, for the few titles a run adds. The codes are
kept in ``kept_copies`` with a fingerprint of the rules and of the code that applies them; under other rules
or another version, every title is classified again. Full runs classify every title again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Connection

from config.scoring import ScoringConfig
from scoring import personas
from scoring.personas import PersonaClassifier, PersonaColumns
from store import kept_copies

NAME = "titles"  # in kept_copies
FORMAT = 1
_DTYPES = [kept_copies.TEXT, "|i1", "|i1", "<i2"]  # title, persona, seniority, department
COPY = kept_copies.Spec(NAME, FORMAT, tuple(_DTYPES))


def fingerprint(config: ScoringConfig) -> str:
    """What the codes depend on: the persona rules and the code applying them."""
    rules = json.dumps(config.personas.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(rules + Path(personas.__file__).read_bytes()).hexdigest()


def read_classified(conn: Connection, config: ScoringConfig, titles: Sequence[str | None], *,
                    reuse: bool = True, ahead: kept_copies.ReadEarlier | None = None,
                    ) -> kept_copies.Current[PersonaColumns]:
    """Everyone's persona codes, with the kept codes of the titles seen before when ``reuse``, and the codes to
    keep when any title was classified anew. Writes nothing, so a process beside the stage can classify them
    (:mod:`worker.score_prefetch`). ``ahead``: the kept codes as read earlier, used while they are still those
    stored."""
    stamp = fingerprint(config)
    kept = COPY.load(conn, ahead) if reuse else None
    known = {}
    if kept is not None and kept.header.get("fingerprint") == stamp:
        title, persona, seniority, department = kept.columns
        known = dict(zip(title.tolist(), zip(persona.tolist(), seniority.tolist(), department.tolist(), strict=True),
                         strict=True))
    result = PersonaClassifier(config.personas).classify_known(titles, known)
    rewrite = None
    if result.classified:
        distinct = np.empty(len(result.titles), dtype=object)
        distinct[:] = result.titles
        rewrite = kept_copies.encode(NAME, FORMAT, [distinct, result.persona, result.seniority, result.department],
                                     _DTYPES, {"fingerprint": stamp})
    return kept_copies.Current(result.columns, rewrite)


def classify_titles(conn: Connection, config: ScoringConfig, titles: Sequence[str | None], *,
                    reuse: bool = True) -> PersonaColumns:
    """Everyone's persona codes, with the kept codes of the titles seen before when ``reuse``; the codes are kept
    again when any title was classified anew."""
    return kept_copies.keep(conn, read_classified(conn, config, titles, reuse=reuse))
