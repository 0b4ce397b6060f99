"""The small, hand-checkable rules: engagement transform, velocity trend, grade, alignment."""

from __future__ import annotations

import numpy as np

from config.scoring import AlignmentConfig, EngagementConfig, GradeConfig, GradeThresholds, VelocityConfig

TRENDS = ("cooling", "steady", "rising", "surging")
ALIGNMENTS = ("aligned_low", "marketing_high_sales_low", "sales_high_marketing_low", "aligned_high")


def engagement_0_100(raw: np.ndarray, config: EngagementConfig) -> np.ndarray:
    """Saturating, not rank-based: the same raw points give the same score in every run and org."""
    return 100.0 * -np.expm1(-np.asarray(raw, dtype=np.float64) / config.scale_points)


def velocity(
    recent: np.ndarray, previous: np.ndarray, new_people: np.ndarray | int, config: VelocityConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(ratio, trend code) from the recent window against the previous one.

    New people engaging count as extra recent points: two buyers in two weeks beats one in two months.
    """
    recent_eff = np.asarray(recent, dtype=np.float64) + config.new_person_points * np.asarray(new_people)
    ratio = (recent_eff + config.smoothing_points) / (np.asarray(previous, dtype=np.float64) + config.smoothing_points)
    active = recent_eff >= config.min_recent_points
    trend = np.full(ratio.shape, TRENDS.index("steady"), dtype=np.int8)
    trend[active & (ratio >= config.rising_ratio)] = TRENDS.index("rising")
    trend[active & (ratio >= config.surging_ratio)] = TRENDS.index("surging")
    trend[(ratio <= config.cooling_ratio) & (np.asarray(previous) >= config.min_recent_points)] = TRENDS.index(
        "cooling"
    )
    return ratio, trend


def _by_thresholds(score: np.ndarray, t: GradeThresholds) -> np.ndarray:
    grade = np.ones(score.shape, dtype=np.int8)
    grade[score >= t.grade_2] = 2
    grade[score >= t.grade_3] = 3
    grade[score >= t.grade_4] = 4
    return grade


def grade_score(fit: np.ndarray, engagement: np.ndarray, config: GradeConfig) -> np.ndarray:
    return config.fit_weight * np.asarray(fit) + (1.0 - config.fit_weight) * np.asarray(engagement)


def grades(
    fit: np.ndarray, engagement: np.ndarray, config: GradeConfig, predictive: np.ndarray | None = None,
    cutoffs: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """1-4 (4 = act now). From the predictive probability when one is given and enabled, else rules.

    Rows without a probability (NaN: an entity the model does not cover) are graded by the rules.
    ``cutoffs`` (percentile mode only): grade scores of the lowest grade 4, 3 and 2 when the whole
    population was ranked (:func:`percentile_cutoffs`), for grading a subset the way that ranking did.
    """
    if cutoffs is not None and config.mode == "percentiles":
        rules = _by_cutoffs(grade_score(fit, engagement, config), cutoffs)
    else:
        rules = _rules_grades(fit, engagement, config)
    if predictive is not None and config.use_predictive:
        p = np.asarray(predictive, dtype=np.float64)
        known = ~np.isnan(p)
        by_model = _by_thresholds(100.0 * np.where(known, p, 0.0), config.predictive_thresholds)
        return np.where(known, by_model, rules).astype(np.int8)
    return rules


def _rules_grades(fit: np.ndarray, engagement: np.ndarray, config: GradeConfig) -> np.ndarray:
    score = grade_score(fit, engagement, config)
    if config.mode == "thresholds":
        return _by_thresholds(score, config.thresholds)
    # Percentiles: the top share gets grade 4 and so on; ties broken by position so runs agree.
    n = len(score)
    order = np.lexsort((np.arange(n), -score))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    grade = np.ones(n, dtype=np.int8)
    cut4, cut3, cut2 = _percentile_cuts(n, config)
    grade[rank < cut2] = 2
    grade[rank < cut3] = 3
    grade[rank < cut4] = 4
    return grade


def _percentile_cuts(n: int, config: GradeConfig) -> tuple[int, int, int]:
    p = config.percentiles
    cut4 = int(round(p.grade_4 * n))
    cut3 = cut4 + int(round(p.grade_3 * n))
    cut2 = cut3 + int(round(p.grade_2 * n))
    return cut4, cut3, cut2


def percentile_cutoffs(score: np.ndarray, config: GradeConfig) -> tuple[float, float, float]:
    """The grade scores at which percentile grading put the lowest grade 4, 3 and 2 of this
    population (``inf`` when a grade got nobody): what an incremental run grades a few rescored
    entities against instead of ranking them among themselves."""
    ranked = np.sort(np.asarray(score, dtype=np.float64))[::-1]
    return tuple(float(ranked[cut - 1]) if 0 < cut <= len(ranked) else float("inf")  # type: ignore[return-value]
                 for cut in _percentile_cuts(len(ranked), config))


def _by_cutoffs(score: np.ndarray, cutoffs: tuple[float, float, float]) -> np.ndarray:
    grade = np.ones(score.shape, dtype=np.int8)
    grade[score >= cutoffs[2]] = 2
    grade[score >= cutoffs[1]] = 3
    grade[score >= cutoffs[0]] = 4
    return grade


def alignment(sales: np.ndarray, marketing: np.ndarray, config: AlignmentConfig) -> np.ndarray:
    """Code into :data:`ALIGNMENTS`: where marketing and sales are out of step."""
    s_hi = np.asarray(sales) >= config.sales_high_points
    m_hi = np.asarray(marketing) >= config.marketing_high_points
    return (m_hi & ~s_hi) * 1 + (s_hi & ~m_hi) * 2 + (s_hi & m_hi) * 3
