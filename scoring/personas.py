"""Persona, seniority and department from job titles.

Titles repeat a lot (a million people share a few thousand distinct titles), so each distinct
title is classified once and the result broadcast back to every person holding it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
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
        titles = list(titles)
        distinct: dict[str | None, int] = {}
        index = np.fromiter((distinct.setdefault(t, len(distinct)) for t in titles), dtype=np.int64, count=len(titles))
        dept_code = {d: i for i, d in enumerate(self.departments)}
        p = np.empty(len(distinct), dtype=np.int8)
        s = np.empty(len(distinct), dtype=np.int8)
        d = np.empty(len(distinct), dtype=np.int16)
        for title, i in distinct.items():
            c = self.classify(title)
            p[i] = PERSONAS.index(c.persona)
            s[i] = SENIORITIES.index(c.seniority) if c.seniority else -1
            d[i] = dept_code[c.department] if c.department else DEPARTMENTS_UNKNOWN
        return PersonaColumns(persona=p[index], seniority=s[index], department=d[index], departments=self.departments)


@dataclass(frozen=True)
class PersonaColumns:
    persona: np.ndarray  # int8 code into config.scoring.PERSONAS
    seniority: np.ndarray  # int8 code into SENIORITIES, -1 unknown
    department: np.ndarray  # int16 code into departments, -1 unknown
    departments: tuple[str, ...]
