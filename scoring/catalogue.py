"""The activity catalogue as arrays indexed by type code, for the vectorized engine.

Type codes are positions in :data:`store.activity_types.ACTIVITY_TYPES`, so a code means the
same type in every run and in every stored model's feature columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from config.scoring import PERSONAS, ScoringConfig
from store.activity_types import ACTIVITY_TYPES, TEAMS

TYPE_NAMES: tuple[str, ...] = tuple(ACTIVITY_TYPES)
TYPE_CODE: dict[str, int] = {name: i for i, name in enumerate(TYPE_NAMES)}
TEAM_CODE: dict[str, int] = {name: i for i, name in enumerate(TEAMS)}
SALES_TEAM = TEAM_CODE["sales"]
MARKETING_TEAM = TEAM_CODE["marketing"]
PERSONA_CODE: dict[str, int] = {name: i for i, name in enumerate(PERSONAS)}
OTHER_PERSONA = PERSONA_CODE["other"]
DAY = 86_400


@dataclass(frozen=True)
class Catalogue:
    """Per-type arrays: points, decay rate per second, daily cap, team code, engagement flag."""

    points: np.ndarray  # float64[n_types]
    half_life_days: np.ndarray  # float64[n_types]
    daily_cap: np.ndarray  # int64[n_types]
    team: np.ndarray  # int8[n_types]
    engagement: np.ndarray  # bool[n_types]
    persona_multiplier: np.ndarray  # float64[n_personas]
    lookback_seconds: int

    @property
    def n_types(self) -> int:
        return len(self.points)

    @classmethod
    def from_config(cls, config: ScoringConfig) -> Catalogue:
        entries = [config.catalogue[name] for name in TYPE_NAMES]
        return cls(
            points=np.array([e.points for e in entries], dtype=np.float64),
            half_life_days=np.array([e.half_life_days for e in entries], dtype=np.float64),
            daily_cap=np.array([e.daily_cap for e in entries], dtype=np.int64),
            team=np.array([TEAM_CODE[e.team] for e in entries], dtype=np.int8),
            engagement=np.array([e.engagement for e in entries], dtype=bool),
            persona_multiplier=np.array([config.personas.multipliers[p] for p in PERSONAS], dtype=np.float64),
            lookback_seconds=config.lookback_days * DAY,
        )

    def decay(self, type_code: np.ndarray, age_seconds: np.ndarray) -> np.ndarray:
        """0.5 ** (age / half-life) per touch: each type fades at its own rate."""
        return np.exp2(-(age_seconds / (self.half_life_days[type_code] * DAY)))
