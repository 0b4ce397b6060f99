"""Persona, seniority and department from job titles.

Titles repeat a lot (a million people share a few thousand distinct titles), so each distinct
title is classified once and the result broadcast back to every person holding it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from config.scoring import PERSONAS, SENIORITIES, PersonaConfig

DEPARTMENTS_UNKNOWN = -1


@dataclass(frozen=True)
class TitleClass:
    persona: str
    seniority: str | None
    department: str | None


class PersonaClassifier:
    """Applies the configured title rules; the first matching rule of each list wins."""

    def __init__(self, config: PersonaConfig) -> None:
        self._seniority = [(re.compile(r.pattern, re.IGNORECASE), r.value) for r in config.seniority_rules]
        self._department = [(re.compile(r.pattern, re.IGNORECASE), r.value) for r in config.department_rules]
        self._persona_of = dict(config.persona_of_seniority)
        self.departments: tuple[str, ...] = tuple(dict.fromkeys(r.value for r in config.department_rules))

    def classify(self, title: str | None) -> TitleClass:
        if not title or not title.strip():
            return TitleClass("other", None, None)
        text = unicodedata.normalize("NFC", title.strip())
        seniority = next((value for rx, value in self._seniority if rx.search(text)), None)
        department = next((value for rx, value in self._department if rx.search(text)), None)
        persona = self._persona_of.get(seniority, "other") if seniority else "other"
        return TitleClass(persona, seniority, department)

    def classify_many(self, titles: Sequence[str | None] | Iterable[str | None]) -> PersonaColumns:
        """Codes per person (persona, seniority, department; -1 = unknown), one regex pass per distinct title."""
        return self.classify_known(titles).columns

    def classify_known(self, titles: Sequence[str | None] | Iterable[str | None],
                       known: Mapping[str | None, TitleCodes] | None = None) -> ClassifiedTitles:
        """:meth:`classify_many`, with the codes of the titles ``known`` holds (codes this classifier gave earlier,
        kept by a caller between runs: an L org's 99,000 distinct titles take 1.6 s to classify), and each
        distinct title's codes."""
        titles = list(titles)
        known = known or {}
        distinct: dict[str | None, int] = {}
        index = np.fromiter((distinct.setdefault(t, len(distinct)) for t in titles), dtype=np.int64, count=len(titles))
        dept_code = {d: i for i, d in enumerate(self.departments)}
        p = np.empty(len(distinct), dtype=np.int8)
        s = np.empty(len(distinct), dtype=np.int8)
        d = np.empty(len(distinct), dtype=np.int16)
        new = 0
        for title, i in distinct.items():
            codes = known.get(title)
            if codes is None:
                c = self.classify(title)
                codes = (PERSONAS.index(c.persona), SENIORITIES.index(c.seniority) if c.seniority else -1,
                         dept_code[c.department] if c.department else DEPARTMENTS_UNKNOWN)
                new += 1
            p[i], s[i], d[i] = codes
        columns = PersonaColumns(persona=p[index], seniority=s[index], department=d[index],
                                 departments=self.departments)
        return ClassifiedTitles(columns, list(distinct), p, s, d, new)


TitleCodes = tuple[int, int, int]  # persona, seniority, department codes of one title


@dataclass(frozen=True)
class PersonaColumns:
    persona: np.ndarray  # int8 code into config.scoring.PERSONAS
    seniority: np.ndarray  # int8 code into SENIORITIES, -1 unknown
    department: np.ndarray  # int16 code into departments, -1 unknown
    departments: tuple[str, ...]


@dataclass(frozen=True)
class ClassifiedTitles:
    """Everyone's codes, and the codes of each distinct title (for a caller that keeps them between runs)."""

    columns: PersonaColumns
    titles: list[str | None]  # distinct, in first-seen order
    persona: np.ndarray
    seniority: np.ndarray
    department: np.ndarray
    classified: int  # distinct titles classified anew (not known)
