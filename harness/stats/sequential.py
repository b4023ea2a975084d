"""Group-sequential stopping for repeated cross-validation (``cv.stop_when_settled``): arrays in, decision out.

After each repeat r = 1..R (R = ``cv.repeats``, the planned maximum) every arm's per-fold differences from
the baseline d (oriented so that > 0 is better; n = r x k of them) give the corrected t statistic
(Nadeau-Bengio) T_r = mean(d) / se_r, se_r = sqrt((1/n + n_test/n_train) s^2). Its variance factor
v_r = 1/n + n_test/n_train defines the information fraction t_r = v_R / v_r: under the model the corrected
t assumes (every pair of folds correlated with rho = n_test/n), the looks' statistics have the canonical
group-sequential joint distribution corr(Z_j, Z_r) = sqrt(t_j / t_r).

- **better / worse**: the interval mean(d) -+ c_r se_r lies above +rope / below -rope, i.e. the corrected t of
  d - rope is >= c_r (of d + rope <= -c_r), as compare's verdict needs P(d > rope): a difference inside the
  ROPE is never called better (with rope 0 this is T_r >= c_r). The c_r are two-sided boundaries with Lan-DeMets
  O'Brien-Fleming-type alpha spending, alpha/2 per side: a(t) = 2 (1 - Phi(z_{1-alpha/4} / sqrt(t))), found
  by numerical integration over the looks (Armitage-McPherson-Rowe), then moved to Student t with n - 1
  degrees of freedom at equal tail probability.
- **equivalent**: the interval mean(d) -+ c_r se_r lies inside the ROPE (-rope, rope): a two one-sided test
  at the same boundaries, so falsely calling a difference of rope or more equivalent has rate <= alpha/2.
- **continue** otherwise; at the last look what is not settled is **inconclusive**.

A difference equal on every fold has no noise estimate and is taken as exact (compare's point mass):
equivalent inside the ROPE, better or worse outside it, unless so few folds agree that chance explains it
(2 / 2^n > alpha: fewer than 6 at 0.05; a quantized metric on small folds does that), which settles nothing. A settled arm keeps the decision of the look that
settled it. Error rates per arm: false better-or-worse
<= alpha with no difference (= alpha with rope 0, less with a ROPE), better (worse) <= alpha/2 when the difference
is exactly +rope (-rope), false equivalent <= alpha/2 (measured by :func:`simulate`; see docs/incoming/seqstop.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from harness.stats._tests import constant_may_be_chance

RULE_VERSION = 1  # raise when a change moves a boundary or makes a decision less conservative (a stopped run's record names it)
SETTLED = ("better", "worse", "equivalent")
CODES = ("continue", "better", "worse", "equivalent", "inconclusive")  # decide_arrays's integer codes
GRID = 1200  # bins of the continuation region in the boundary integration
PATHS = 200_000  # simulated null paths per corrected-t boundary set


@dataclass(frozen=True)
class Look:
    """One arm's decision at one look."""

    decision: str  # better, worse, equivalent, continue, inconclusive
    statistic: float  # corrected t, > 0 means better
    boundary: float  # |t| needed to stop for better/worse at this look
    difference: float  # mean of the oriented differences
    low: float  # mean -+ boundary x se: inside (-rope, rope) means equivalent
    high: float
    n: int
    reason: str


def variance_factors(folds: int, looks: int, test_train_ratio: float) -> np.ndarray:
    """v_r = 1/(r k) + n_test/n_train for r = 1..looks: the corrected t's variance factor after r repeats."""
    return 1.0 / (folds * np.arange(1, looks + 1)) + test_train_ratio


def information_fractions(folds: int, looks: int, test_train_ratio: float) -> np.ndarray:
    """t_r = v_R / v_r: the share of the full budget's information at each look (1 at the last)."""
    v = variance_factors(folds, looks, test_train_ratio)
    return v[-1] / v


def obf_spending(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """Two-sided alpha spent by information fraction t: Lan-DeMets O'Brien-Fleming type, alpha/2 per side."""
    z = stats.norm.isf(alpha / 4)
    return 4 * stats.norm.sf(z / np.sqrt(np.asarray(t, dtype=float)))


@functools.lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    spent = obf_spending(np.asarray(fractions), alpha)
    bounds: list[float] = []
    mass = centers = np.zeros(0)  # the surviving probability per bin of B(t) (Brownian motion) and its bins
    previous_t = previous_spent = 0.0
    for t, total in zip(fractions, spent, strict=True):
        target, sd = float(total - previous_spent), math.sqrt(t - previous_t)
        if not bounds:
            c = float(stats.norm.isf(max(target, 1e-300) / 2))
            b = c * math.sqrt(t)
        else:
            high = 40.0 * math.sqrt(t)
            args = (mass, centers, sd, target)
            b = high if _excess(high, *args) >= 0 else float(optimize.brentq(_excess, 0.0, high, args, xtol=1e-10))
            c = b / math.sqrt(t)
        edges = np.linspace(-b, b, GRID + 1)
        if not bounds:
            new = np.diff(stats.norm.cdf(edges / sd))
        else:  # mass moved from each old bin into each new bin: robust however narrow the step
            cdf = special.ndtr((edges[None, :] - centers[:, None]) / sd)
            new = mass @ np.diff(cdf, axis=1)
        mass, centers = new, (edges[:-1] + edges[1:]) / 2
        bounds.append(c)
        previous_t, previous_spent = t, float(total)
    return tuple(bounds)


def _excess(b: float, mass: np.ndarray, centers: np.ndarray, sd: float, target: float) -> float:
    """P(|B| >= b at this look, inside the region before) minus the alpha this look may spend."""
    return float(mass @ (special.ndtr((-b - centers) / sd) + special.ndtr((-b + centers) / sd))) - target


def boundaries(fractions: Sequence[float] | np.ndarray, alpha: float) -> np.ndarray:
    """Two-sided z boundaries c_1..c_K for increasing information fractions (the last 1) at level alpha."""
    t = tuple(float(x) for x in fractions)
    if not t or any(b <= a for a, b in zip(t, t[1:], strict=False)) or not 0 < t[0] or abs(t[-1] - 1) > 1e-9:
        raise ValueError(f"information fractions must increase from > 0 to 1, got {t}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return np.asarray(_boundaries(t, float(alpha)))


def t_boundaries(folds: int, looks: int, test_train_ratio: float, alpha: float) -> np.ndarray:
    """The corrected-t boundaries per look, spending as :func:`obf_spending` under the corrected t's model.

    The looks' t statistics share one variance estimate's noise only in part, so they are less correlated
    than the z statistics: boundaries moved to t one look at a time spend too much (measured 0.06-0.08
    instead of 0.05). They are found instead by simulating the null t process (fixed seed, so the same
    inputs give the same boundaries); a look whose share of alpha is too small to simulate (< 50 paths)
    takes the z boundary moved to t at equal tail probability.
    """
    return np.asarray(_t_boundaries(int(folds), int(looks), round(float(test_train_ratio), 6), float(alpha)))


@functools.lru_cache(maxsize=64)
def _t_boundaries(folds: int, looks: int, ratio: float, alpha: float) -> tuple[float, ...]:
    fractions = information_fractions(folds, looks, ratio)
    spent = np.diff(obf_spending(fractions, alpha), prepend=0.0)
    z = boundaries(fractions, alpha)
    rng = np.random.default_rng(20261204)
    rho = ratio / (1 + ratio)  # every pair of folds correlated rho: one shared effect + independent fold noise
    paths = PATHS
    total = np.zeros(paths)  # sum of the differences, shared effect left out: it cancels in the variance
    squares = np.zeros(paths)
    alive = np.ones(paths, dtype=bool)
    shared = math.sqrt(rho) * rng.standard_normal(paths)
    bounds = []
    for r in range(1, looks + 1):
        n = r * folds
        fold_means = math.sqrt((1 - rho) / folds) * rng.standard_normal(paths)  # this repeat's noise mean
        within = (1 - rho) * rng.chisquare(folds - 1, paths)  # and its sum of squares about that mean
        total += folds * fold_means
        squares += within + folds * fold_means**2
        noise_mean = total / n
        var = (squares - n * noise_mean**2) / (n - 1)
        t = np.abs(shared + noise_mean) / np.sqrt(var * (1 / n + ratio))
        crossing = spent[r - 1] * paths
        if crossing < 50:
            c = float(stats.t.isf(stats.norm.sf(z[r - 1]), n - 1))
        else:
            c = float(np.sort(t[alive])[::-1][int(round(crossing)) - 1])
        alive &= t < c
        bounds.append(c)
    return tuple(bounds)


def decide_arrays(d: np.ndarray, test_train_ratio: float, boundary: float, rope: float,
                  last: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised over leading axes of d (..., n): decision codes (see CODES), t, mean, se."""
    n = d.shape[-1]
    mean = d.mean(axis=-1)
    sd = d.std(axis=-1, ddof=1)
    scale = np.maximum(np.abs(d).max(axis=-1), 1e-300)
    sd = np.where(sd <= 1e-9 * scale, 0.0, sd)  # a constant difference: no noise (the posterior's point mass)
    se = sd * math.sqrt(1.0 / n + test_train_ratio)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / np.where(se > 0, se, 1.0), np.sign(mean) * np.inf)
    t = np.where((se == 0) & (np.abs(mean) <= rope), 0.0, t)  # constant and inside the ROPE: equivalent below
    code = np.where(last, 4, 0)
    low, high = mean - boundary * se, mean + boundary * se
    code = np.where((low > -rope) & (high < rope), 3, code)
    code = np.where((se == 0) & (np.abs(mean) <= rope), 3, code)
    code = np.where(low > rope, 1, np.where(high < -rope, 2, code))  # beyond the ROPE, as compare's verdict
    return code, t, mean, se


def decide(differences: Sequence[float] | np.ndarray, *, look: int, folds: int, max_repeats: int,
           test_train_ratio: float, alpha: float, rope: float) -> Look:
    """One arm's decision at ``look`` (1-based: after that many repeats) from its finite differences so far,
    oriented so that > 0 is better (fewer than look x folds when some folds had no finite score)."""
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or len(d) < 2 or not np.all(np.isfinite(d)):
        raise ValueError(f"need 2 or more finite differences, got shape {d.shape} "
                         f"({int(np.isfinite(d).sum())} finite)")
    if not 1 <= look <= max_repeats or len(d) > look * folds:
        raise ValueError(f"look {look} of {max_repeats} cannot hold {len(d)} differences of {folds} folds each")
    c = float(t_boundaries(folds, max_repeats, test_train_ratio, alpha)[look - 1])
    code, t, mean, se = (float(x) for x in decide_arrays(d, test_train_ratio, c, rope, look == max_repeats))
    decision = CODES[int(code)]
    low, high = mean - c * se, mean + c * se
    interval = f"interval [{low:+.4g}, {high:+.4g}]"
    if decision in ("better", "worse") and se == 0 and constant_may_be_chance(len(d), alpha):
        decision = "inconclusive" if look == max_repeats else "continue"
        return Look(decision, t, c, mean, low, high, len(d), f"the difference is {mean:+.4g} on each of the {len(d)} "
                    f"folds: no spread to estimate the noise from, and {len(d)} folds agree by chance too often")
    reason = {"better": f"{interval} above +{rope:g} (t {t:.2f}, boundary {c:.2f})",
              "worse": f"{interval} below -{rope:g} (t {t:.2f}, boundary -{c:.2f})",
              "equivalent": f"{interval} inside ±{rope:g}",
              "continue": f"{interval} (|t| {abs(t):.2f}, boundary {c:.2f}) neither beyond nor inside ±{rope:g}",
              "inconclusive": f"last look: {interval} (|t| {abs(t):.2f}, boundary {c:.2f}) neither beyond nor inside "
                              f"±{rope:g}"}[decision]
    return Look(decision, t, c, mean, low, high, len(d), reason)


@dataclass(frozen=True)
class Simulation:
    """Sequential vs full-budget decisions of many synthetic designs of one arm vs its baseline."""

    decisions: np.ndarray  # per design: the sequential decision (CODES index)
    repeats: np.ndarray  # per design: repeats run before stopping
    full: np.ndarray  # per design: the fixed-design decision with all repeats (one look at level alpha)

    def rate(self, *names: str) -> float:
        return float(np.isin(self.decisions, [CODES.index(n) for n in names]).mean())

    @property
    def agreement(self) -> float:
        return float((self.decisions == self.full).mean())


def simulate(effects: np.ndarray, *, folds: int, max_repeats: int, alpha: float, rope: float, seed: int,
             shared: str = "dataset", sd: float = 1.0) -> Simulation:
    """Correlated CV differences d[i, r, j] = effect_i + shared + fold noise, one design per effect.

    ``shared="dataset"``: one effect per design common to every repeat (the model the corrected t assumes,
    rho = 1/folds); ``"repeat"``: a new shared effect per repeat (the corrected t is conservative there).
    """
    rng = np.random.default_rng(seed)
    effects = np.asarray(effects, dtype=float)
    ratio, rho = 1.0 / (folds - 1), 1.0 / folds
    shape = (len(effects), max_repeats if shared == "repeat" else 1, 1)
    d = (effects[:, None, None] + sd * math.sqrt(rho) * rng.standard_normal(shape)
         + sd * math.sqrt(1 - rho) * rng.standard_normal((len(effects), max_repeats, folds)))
    bounds = t_boundaries(folds, max_repeats, ratio, alpha)
    decisions = np.zeros(len(effects), dtype=int)
    repeats = np.full(len(effects), max_repeats)
    for r in range(1, max_repeats + 1):
        code = decide_arrays(d[:, :r].reshape(len(effects), -1), ratio, float(bounds[r - 1]), rope,
                             r == max_repeats)[0]
        stop = (decisions == 0) & (code != 0)
        decisions[stop], repeats[stop] = code[stop], r
    fixed = float(stats.t.isf(alpha / 2, folds * max_repeats - 1))
    full = decide_arrays(d.reshape(len(effects), -1), ratio, fixed, rope, True)[0]
    return Simulation(decisions, repeats, full)


def describe(record: dict[str, object]) -> str:
    """The stopping record in one sentence (run.json / stats.json's ``stopping``)."""
    run, budget = record.get("repeats_run"), record.get("max_repeats")
    decisions = record.get("decisions") or {}
    per_arm = ", ".join(f"{arm} {d}" for arm, d in dict(decisions).items())  # type: ignore[call-overload]
    status = record.get("status")
    if status == "settled":
        head = f"stopped after {run} of {budget} repeats: every arm settled"
    elif status == "exhausted":
        head = f"ran all {budget} repeats: not every arm settled"
    else:
        head = f"{run} of {budget} repeats run, not finished: {record.get('reason') or status}"
    return f"{head} ({per_arm}; group-sequential, alpha {record.get('alpha')}, ROPE ±{record.get('rope')})"
