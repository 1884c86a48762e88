"""Tests and confidence intervals for campaign uplift, in pure Python (no scipy in the engine).

Two kinds of comparison, treated against control (or one variant against another):

* **Two proportions** (conversion, response, retention rates):
  :func:`compare_proportions`. The difference ``p_t - p_c`` with the Wald
  (unpooled) interval ``d ± z sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)``; the
  p-value of the two-sided pooled two-proportion z-test; the relative uplift
  ``p_t / p_c - 1`` with the log-ratio (Katz) interval
  ``exp(log(p_t/p_c) ± z sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c)) - 1``.
  These are statsmodels' ``confint_proportions_2indep`` (``compare='diff',
  method='wald'`` and ``compare='ratio', method='log'``) and
  ``proportions_ztest``; the tests check them against it.
* **Two means** (revenue per customer): :func:`compare_means`, from the sums
  and sums of squares the database returns. Welch's t-test (unequal
  variances) with Welch-Satterthwaite degrees of freedom and the interval
  ``d ± t(1 - alpha/2, df) se``; as ``scipy.stats.ttest_ind_from_stats(...,
  equal_var=False)``. The Student t distribution is computed here: its CDF
  from the regularized incomplete beta function (a Lentz continued
  fraction, Numerical Recipes 6.4), its quantile by safeguarded Newton steps.

Undefined figures never raise; they are ``nan`` (float fields) or ``None``
(relative figures):

* a group with ``n = 0``: its rate or mean is ``nan``, and so is everything
  that needs it; the p-value is ``nan``;
* proportions: when the pooled rate is 0 or 1 both groups agree exactly:
  p-value 1; when the Wald standard error is 0 the interval is the point;
  the relative uplift is None when control has no successes (``x_c = 0``),
  its interval None when either group has none;
* means: a group with ``n < 2`` has no variance: interval and p-value are
  ``nan``; when both groups are constant (standard error 0) the interval is
  the point and the p-value is 1 when the means agree, else 0. The relative
  uplift of means ``m_t / m_c - 1`` has no interval (None), and is None when
  ``m_c = 0``.

``significant`` is ``p_value < 1 - confidence`` (False when it is ``nan``).
"""

from __future__ import annotations

import math
from decimal import Decimal
from statistics import NormalDist

from engine.evaluation.figures import Comparison

NAN = float("nan")
_CF_EPSILON = 1e-15
_CF_TINY = 1e-300
_CF_MAX_ITERATIONS = 200_000
#: beyond these degrees of freedom the t distribution is the normal one (their quantiles differ by < 1e-8)
NORMAL_DF = 1e9


# ---------------------------------------------------------------------------- distributions


def normal_quantile(p: float) -> float:
    """The standard normal quantile of ``p`` (0 < p < 1)."""
    return NormalDist().inv_cdf(p)


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z, accurate in the tails."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _CF_TINY if abs(d) < _CF_TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPSILON:
            break
    return h


def _log_gamma_ratio(a: float, b: float) -> float:
    """``log(Gamma(a + b) / Gamma(a))`` without the cancellation of two huge ``lgamma`` values.

    For large ``a`` from Stirling's series: ``b log a + (a + b - 1/2) log1p(b/a) - b`` plus the
    ``1/(12 z)`` and ``1/(360 z^3)`` terms, exact to double precision for ``a >= 1e4``.
    """
    if a < 1e4:
        return math.lgamma(a + b) - math.lgamma(a)
    s = a + b
    return (
        b * math.log(a)
        + (s - 0.5) * math.log1p(b / a)
        - b
        + (1.0 / (12.0 * s) - 1.0 / (12.0 * a))
        - (1.0 / (360.0 * s**3) - 1.0 / (360.0 * a**3))
    )


def _incomplete_beta(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """``I_x(a, b)`` given ``x``, ``y = 1 - x`` and their logarithms, each computed without rounding loss."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    big, small = (a, b) if a >= b else (b, a)
    log_beta = math.lgamma(small) - _log_gamma_ratio(big, small)  # log B(a, b)
    front = math.exp(a * log_x + b * log_y - log_beta)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, y) / b


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b)``, the CDF of the Beta(a, b) distribution at ``x`` (a, b > 0, 0 <= x <= 1)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return _incomplete_beta(a, b, x, 1.0 - x, math.log(x), math.log1p(-x))


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df > 0, may be fractional)."""
    if math.isnan(t) or math.isnan(df):
        return NAN
    if df > NORMAL_DF:
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    ratio = t * t / df  # x = df / (df + t²) = 1 / (1 + ratio), 1 - x = ratio / (1 + ratio)
    x, y = 1.0 / (1.0 + ratio), ratio / (1.0 + ratio)
    log_x = -math.log1p(ratio)
    log_y = math.log(ratio) + log_x if ratio > 0 else -math.inf
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, x, y, log_x, log_y)
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    return t_sf(-t, df)


def t_pdf(t: float, df: float) -> float:
    """The density of Student's t with ``df`` degrees of freedom at ``t``."""
    log_norm = math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1.0) / 2.0 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0 < p < 1).

    Solves ``sf(t) = q`` for the upper tail ``q = min(p, 1 - p)`` by Newton
    steps kept inside a bracket (bisection when a step would leave it), to
    relative precision 1e-14; symmetric for the lower half.
    """
    if not 0.0 < p < 1.0 or math.isnan(df) or df <= 0:
        return NAN
    if p == 0.5:
        return 0.0
    if df > NORMAL_DF:
        return normal_quantile(p)
    q = min(p, 1.0 - p)
    low, high = 0.0, 1.0
    while t_sf(high, df) > q:
        low, high = high, high * 2.0
    t = min(max(normal_quantile(1.0 - q), low), high)
    for _ in range(200):
        error = t_sf(t, df) - q  # decreasing in t
        if error > 0:
            low = t
        else:
            high = t
        step = error / t_pdf(t, df) if t_pdf(t, df) > 0 else math.inf
        candidate = t + step
        if not low < candidate < high:
            candidate = (low + high) / 2.0
        if abs(candidate - t) <= 1e-14 * max(1.0, abs(t)):
            t = candidate
            break
        t = candidate
    return t if p > 0.5 else -t


# ---------------------------------------------------------------------------- comparisons


def _significant(p_value: float, confidence: float) -> bool:
    return not math.isnan(p_value) and p_value < 1.0 - confidence


def compare_proportions(
    x_t: int, n_t: int, x_c: int, n_c: int, *, metric: str, confidence: float
) -> Comparison:
    """Rate ``x_t / n_t`` (treated) against ``x_c / n_c`` (control), see the module docstring."""
    confidence = float(confidence)
    if n_t <= 0 or n_c <= 0:
        p_t = x_t / n_t if n_t > 0 else NAN
        p_c = x_c / n_c if n_c > 0 else NAN
        return Comparison(metric, p_t, p_c, NAN, NAN, NAN, None, None, None, NAN, confidence, False)
    p_t, p_c = x_t / n_t, x_c / n_c
    difference = p_t - p_c
    z = normal_quantile(1.0 - (1.0 - confidence) / 2.0)
    se = math.sqrt(p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c)
    pooled = (x_t + x_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c))
    p_value = normal_two_sided_p(difference / se_pooled) if se_pooled > 0 else 1.0
    relative = relative_low = relative_high = None
    if x_c > 0:
        relative = p_t / p_c - 1.0
        if x_t > 0:
            spread = z * math.sqrt(max(1.0 / x_t - 1.0 / n_t + 1.0 / x_c - 1.0 / n_c, 0.0))
            log_ratio = math.log(p_t / p_c)
            relative_low = math.exp(log_ratio - spread) - 1.0
            relative_high = math.exp(log_ratio + spread) - 1.0
    return Comparison(
        metric,
        p_t,
        p_c,
        difference,
        difference - z * se,
        difference + z * se,
        relative,
        relative_low,
        relative_high,
        p_value,
        confidence,
        _significant(p_value, confidence),
    )


def _variance(total: Decimal, squares: Decimal, n: int) -> float:
    """The sample variance from the sum and the sum of squares (exact in Decimal, never below 0)."""
    return max(float((squares - total * total / n) / (n - 1)), 0.0)


def _decimal(value: Decimal | float | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def welch_df(var_t: float, n_t: int, var_c: float, n_c: int) -> float:
    """The Welch-Satterthwaite degrees of freedom (``nan`` when both variances are 0)."""
    a, b = var_t / n_t, var_c / n_c
    denominator = a * a / (n_t - 1) + b * b / (n_c - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else NAN


def compare_means(
    sum_t: Decimal | float | int,
    sum_squares_t: Decimal | float | int,
    n_t: int,
    sum_c: Decimal | float | int,
    sum_squares_c: Decimal | float | int,
    n_c: int,
    *,
    metric: str,
    confidence: float,
) -> Comparison:
    """Mean ``sum_t / n_t`` (treated) against ``sum_c / n_c`` (control) by Welch's t-test.

    The sums of squares are of the individual values (``sum x²``), as SQL
    returns them; see the module docstring for undefined cases.
    """
    confidence = float(confidence)
    total_t, total_c = _decimal(sum_t), _decimal(sum_c)
    mean_t = float(total_t / n_t) if n_t > 0 else NAN
    mean_c = float(total_c / n_c) if n_c > 0 else NAN
    difference = mean_t - mean_c
    relative = None
    if n_t > 0 and n_c > 0 and mean_c != 0:
        relative = mean_t / mean_c - 1.0
    low = high = p_value = NAN
    if n_t >= 2 and n_c >= 2:
        var_t = _variance(total_t, _decimal(sum_squares_t), n_t)
        var_c = _variance(total_c, _decimal(sum_squares_c), n_c)
        se = math.sqrt(var_t / n_t + var_c / n_c)
        if se > 0:
            df = welch_df(var_t, n_t, var_c, n_c)
            p_value = 2.0 * t_sf(abs(difference) / se, df)
            spread = t_quantile(1.0 - (1.0 - confidence) / 2.0, df) * se
            low, high = difference - spread, difference + spread
        else:
            p_value = 1.0 if difference == 0 else 0.0
            low = high = difference
    return Comparison(
        metric,
        mean_t,
        mean_c,
        difference,
        low,
        high,
        relative,
        None,
        None,
        p_value,
        confidence,
        _significant(p_value, confidence),
    )


def p_value_text(p: float | None) -> str:
    """A p-value as people read it: ``1.00``, ``0.23``, ``0.004``, ``< 0.001``; ``n/a`` when there is none."""
    if p is None or math.isnan(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    if p < 0.01:
        return f"{p:.3f}"
    return f"{p:.2f}"


def chance_text(p: float) -> str:
    """``p`` as a share of the time, for a sentence: ``100 %``, ``23 %``, ``0.4 %``, ``less than 0.1 %``."""
    if p < 0.001:
        return "less than 0.1 %"
    return f"{p * 100:.0f} %" if p >= 0.01 else f"{p * 100:.1f} %"
