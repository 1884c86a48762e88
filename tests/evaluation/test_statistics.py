"""The uplift statistics against hand-computed values and, independently, scipy and statsmodels."""

from __future__ import annotations

import math
import warnings
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from engine.evaluation.statistics import (
    compare_means,
    compare_proportions,
    regularized_incomplete_beta,
    t_cdf,
    t_quantile,
    t_sf,
    welch_df,
)

CONFIDENCES = (0.8, 0.9, 0.95, 0.99, 0.999)


def test_two_proportions_by_hand() -> None:
    # 50 of 100 against 40 of 100: se = sqrt(.5 x .5 / 100 + .4 x .6 / 100) = sqrt(.0049) = .07
    c = compare_proportions(50, 100, 40, 100, metric="conversion_rate", confidence=0.95)
    z = 1.959963984540054
    assert (c.treated, c.control) == (0.5, 0.4)
    assert c.difference == pytest.approx(0.1, abs=1e-12)
    assert (c.low, c.high) == pytest.approx((0.1 - z * 0.07, 0.1 + z * 0.07), abs=1e-12)
    # pooled .45: se0 = sqrt(.45 x .55 x (1/100 + 1/100)); z = .1 / se0 = 1.42134; two-sided p = .155218
    assert c.p_value == pytest.approx(
        math.erfc(0.1 / math.sqrt(0.45 * 0.55 * 0.02) / math.sqrt(2)), abs=1e-12
    )
    assert c.p_value == pytest.approx(0.155218, abs=5e-7)
    # ratio 1.25, var(log ratio) = 1/50 - 1/100 + 1/40 - 1/100 = .025
    assert c.relative == pytest.approx(0.25, abs=1e-12)
    spread = z * math.sqrt(0.025)
    assert c.relative_low == pytest.approx(1.25 * math.exp(-spread) - 1, abs=1e-12)
    assert c.relative_high == pytest.approx(1.25 * math.exp(spread) - 1, abs=1e-12)
    assert (round(c.relative_low, 4), round(c.relative_high, 4)) == (-0.0831, 0.7041)
    assert c.significant is False and c.metric == "conversion_rate" and c.confidence == 0.95


def test_welch_by_hand() -> None:
    # treated 1, 2, 3, 4: mean 2.5, variance 5/3; control 0, 2: mean 1, variance 2
    c = compare_means(10, 30, 4, 2, 4, 2, metric="revenue_per_customer", confidence=0.95)
    se2 = (5 / 3) / 4 + 2 / 2
    df = se2**2 / (((5 / 3) / 4) ** 2 / 3 + 1.0**2 / 1)
    assert welch_df(5 / 3, 4, 2.0, 2) == pytest.approx(df, rel=1e-12)
    assert df == pytest.approx(1.89716, abs=1e-5)
    t = 1.5 / math.sqrt(se2)
    assert (c.treated, c.control, c.difference) == (2.5, 1.0, 1.5)
    assert c.p_value == pytest.approx(2 * stats.t.sf(t, df), abs=1e-12)
    half = stats.t.ppf(0.975, df) * math.sqrt(se2)
    assert (c.low, c.high) == pytest.approx((1.5 - half, 1.5 + half), abs=1e-9)
    assert c.relative == pytest.approx(1.5) and c.relative_low is None and c.relative_high is None


@settings(max_examples=400, deadline=None)
@given(
    n_t=st.integers(1, 5000),
    n_c=st.integers(1, 5000),
    share_t=st.floats(0, 1),
    share_c=st.floats(0, 1),
    confidence=st.sampled_from(CONFIDENCES),
)
def test_two_proportions_agree_with_statsmodels(
    n_t: int, n_c: int, share_t: float, share_c: float, confidence: float
) -> None:
    x_t, x_c = round(share_t * n_t), round(share_c * n_c)
    c = compare_proportions(x_t, n_t, x_c, n_c, metric="m", confidence=confidence)
    alpha = 1 - confidence
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=alpha)
    assert (c.low, c.high) == pytest.approx((low, high), abs=1e-9)
    pooled = (x_t + x_c) / (n_t + n_c)
    if 0 < pooled < 1:
        _, p_value = proportions_ztest([x_t, x_c], [n_t, n_c])
        assert c.p_value == pytest.approx(p_value, abs=1e-9)
        assert c.significant == (p_value < alpha)
    else:
        assert c.p_value == 1.0 and not c.significant
    if x_t > 0 and x_c > 0:
        low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=alpha)
        assert c.relative == pytest.approx((x_t / n_t) / (x_c / n_c) - 1, rel=1e-12)
        assert (c.relative_low, c.relative_high) == pytest.approx((low - 1, high - 1), rel=1e-9, abs=1e-9)


def _welch_sample(values: list[float]) -> tuple[Decimal, Decimal, int]:
    amounts = [Decimal(str(v)).quantize(Decimal("0.01")) for v in values]
    return sum(amounts, Decimal(0)), sum((a * a for a in amounts), Decimal(0)), len(amounts)


money_lists = st.lists(
    st.floats(0, 5000, allow_nan=False).map(lambda v: round(v, 2)), min_size=2, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(treated=money_lists, control=money_lists, confidence=st.sampled_from(CONFIDENCES))
def test_welch_agrees_with_scipy_on_samples(
    treated: list[float], control: list[float], confidence: float
) -> None:
    if np.var(treated) == 0 and np.var(control) == 0:
        return  # no spread: scipy answers nan, we answer the degenerate case (tested below)
    s_t, q_t, n_t = _welch_sample(treated)
    s_c, q_c, n_c = _welch_sample(control)
    c = compare_means(s_t, q_t, n_t, s_c, q_c, n_c, metric="m", confidence=confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(treated, control, equal_var=False)
        interval = result.confidence_interval(confidence_level=confidence)
    assert c.difference == pytest.approx(np.mean(treated) - np.mean(control), rel=1e-9, abs=1e-9)
    assert c.p_value == pytest.approx(result.pvalue, abs=1e-6)
    assert (c.low, c.high) == pytest.approx((interval.low, interval.high), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("n_t", [2, 3, 10, 1000, 250_000])
@pytest.mark.parametrize("n_c", [2, 7, 500, 1_000_000])
@pytest.mark.parametrize(
    ("mean_c", "sd_t", "sd_c"), [(10.0, 5.0, 5.0), (0.5, 30.0, 0.1), (100.0, 0.01, 80.0)]
)
def test_welch_agrees_with_scipy_from_stats(
    n_t: int, n_c: int, mean_c: float, sd_t: float, sd_c: float
) -> None:
    mean_t = mean_c + 1.3
    c = compare_means(
        mean_t * n_t, (sd_t**2 * (n_t - 1) + n_t * mean_t**2), n_t,
        mean_c * n_c, (sd_c**2 * (n_c - 1) + n_c * mean_c**2), n_c,
        metric="m", confidence=0.95,
    )  # fmt: skip
    _, p_value = stats.ttest_ind_from_stats(mean_t, sd_t, n_t, mean_c, sd_c, n_c, equal_var=False)
    assert c.p_value == pytest.approx(p_value, abs=1e-6)
    df = welch_df(sd_t**2, n_t, sd_c**2, n_c)
    half = stats.t.ppf(0.975, df) * math.sqrt(sd_t**2 / n_t + sd_c**2 / n_c)
    assert (c.low, c.high) == pytest.approx((1.3 - half, 1.3 + half), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("df", [0.3, 1, 1.5, 2, 3, 4.7, 10, 29.5, 100, 1e3, 1e4, 1e5, 1e6, 1e8, 1e10])
def test_t_distribution_agrees_with_scipy(df: float) -> None:
    for p in (1e-10, 1e-6, 0.001, 0.01, 0.025, 0.05, 0.2, 0.5, 0.6, 0.9, 0.975, 0.995, 1 - 1e-9):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6, abs=1e-6), p
    for t in (-1e6, -40.0, -3.0, -1.0, 0.0, 0.5, 1.96, 2.5, 8.0, 1e3):
        assert t_sf(t, df) == pytest.approx(stats.t.sf(t, df), abs=1e-6), t
        assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-6), t


def test_incomplete_beta_agrees_with_scipy() -> None:
    for a in (0.5, 1.0, 2.5, 30.0, 4000.0):
        for b in (0.5, 1.0, 7.0, 250.0):
            for x in (0.0, 1e-6, 0.1, 0.5, 0.93, 1 - 1e-9, 1.0):
                assert regularized_incomplete_beta(a, b, x) == pytest.approx(
                    stats.beta.cdf(x, a, b), abs=1e-9
                )


def test_empty_groups_and_zero_counts_never_raise() -> None:
    empty = compare_proportions(0, 0, 3, 10, metric="m", confidence=0.95)
    assert math.isnan(empty.treated) and empty.control == 0.3 and math.isnan(empty.difference)
    assert math.isnan(empty.p_value) and empty.relative is None and not empty.significant
    nothing = compare_proportions(0, 50, 0, 40, metric="m", confidence=0.95)
    assert (nothing.difference, nothing.low, nothing.high, nothing.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert nothing.relative is None and not nothing.significant
    all_of_them = compare_proportions(50, 50, 40, 40, metric="m", confidence=0.95)
    assert all_of_them.p_value == 1.0 and all_of_them.relative == 0.0
    no_control_success = compare_proportions(5, 50, 0, 40, metric="m", confidence=0.95)
    assert no_control_success.relative is None and no_control_success.p_value < 0.05
    no_treated_success = compare_proportions(0, 50, 4, 40, metric="m", confidence=0.95)
    assert no_treated_success.relative == -1.0
    assert no_treated_success.relative_low is None and no_treated_success.relative_high is None


def test_small_and_constant_samples_of_means() -> None:
    single = compare_means(Decimal(5), Decimal(25), 1, Decimal(3), Decimal(5), 2, metric="m", confidence=0.95)
    assert single.difference == 3.5 and math.isnan(single.low) and math.isnan(single.p_value)
    assert not single.significant
    empty = compare_means(0, 0, 0, 10, 50, 2, metric="m", confidence=0.95)
    assert math.isnan(empty.treated) and math.isnan(empty.difference) and empty.relative is None
    same = compare_means(0, 0, 10, 0, 0, 20, metric="m", confidence=0.95)  # nobody bought anything
    assert (same.difference, same.low, same.high, same.p_value, same.relative) == (0.0, 0.0, 0.0, 1.0, None)
    apart = compare_means(30, 90, 10, 0, 0, 20, metric="m", confidence=0.95)  # everyone 3 against 0
    assert (apart.difference, apart.low, apart.high, apart.p_value) == (3.0, 3.0, 3.0, 0.0)
    one_sided = compare_means(30, 90, 10, 20, 400, 20, metric="m", confidence=0.95)  # treated constant
    assert not math.isnan(one_sided.p_value) and one_sided.low < one_sided.difference < one_sided.high
