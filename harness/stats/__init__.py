"""Statistics that are valid for cross-validation and for a held-out test set.

Folds share training data, so their scores are correlated and the plain paired t-test is
anti-conservative. The primary CV test is the Nadeau-Bengio corrected resampled t-test and its
Bayesian counterpart (Corani & Benavoli); held-out test scores are compared per sample (McNemar,
paired bootstrap, clustered by group). Names load lazily so that importing
``harness.stats.registry`` (study validation) does not import scipy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "EffectSizes": "_effects", "Interval": "_effects", "bootstrap_ci": "_effects", "cliffs_delta": "_effects",
    "clopper_pearson": "_effects", "cohens_dz": "_effects", "effect_sizes": "_effects",
    "corrected_interval": "_effects",
    "BayesResult": "_results", "FriedmanResult": "_results", "StatsError": "_results", "TestResult": "_results",
    "bayesian_correlated_ttest": "_tests", "bonferroni": "_tests", "corrected_ttest": "_tests", "friedman": "_tests",
    "holm": "_tests", "mcnemar": "_tests", "min_wilcoxon_p": "_tests", "nemenyi_cd": "_tests",
    "paired_ttest": "_tests", "wilcoxon": "_tests",
    "clustered_mcnemar": "testset", "cluster_bootstrap": "testset",
    "min_detectable": "power", "MetricInfo": "registry", "resolve_metric": "registry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'harness.stats' has no attribute {name!r}")
    value = getattr(import_module(f"harness.stats.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
