"""Statistics that are valid for cross-validation.

Folds share training data, so their scores are correlated and the plain paired t-test is
anti-conservative. The primary test here is the Nadeau-Bengio corrected resampled t-test and
its Bayesian counterpart (Corani & Benavoli); rank and McNemar tests complement them.
"""

from __future__ import annotations

from harness.stats._effects import (
    EffectSizes,
    Interval,
    bootstrap_ci,
    cliffs_delta,
    clopper_pearson,
    cohens_dz,
    effect_sizes,
)
from harness.stats._results import BayesResult, FriedmanResult, StatsError, TestResult
from harness.stats._tests import (
    bayesian_correlated_ttest,
    bonferroni,
    corrected_ttest,
    friedman,
    holm,
    mcnemar,
    min_wilcoxon_p,
    nemenyi_cd,
    paired_ttest,
    wilcoxon,
)

__all__ = [
    "BayesResult", "EffectSizes", "FriedmanResult", "Interval", "StatsError", "TestResult",
    "bayesian_correlated_ttest", "bonferroni", "bootstrap_ci", "cliffs_delta", "clopper_pearson",
    "cohens_dz", "corrected_ttest", "effect_sizes", "friedman", "holm", "mcnemar", "min_wilcoxon_p",
    "nemenyi_cd", "paired_ttest", "wilcoxon",
]
