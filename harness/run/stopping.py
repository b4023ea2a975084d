"""``cv.stop_when_settled`` in a run: repeats in order, a look after each, and the stopping record.

The record (``stopping.json``, copied into ``run.json`` and ``stats.json``) holds the design fixed at the
first look (maximum repeats, folds, metric, baseline, alpha, ROPE), every look's decision per arm and why,
and the outcome. Looks are recomputed from the stored cells on every run, so a rerun of a stopped study
stops at the same repeat without training more, and a run killed mid-repeat finishes that repeat first.
A rerun whose design differs from the recorded one is refused: changing the budget after looking at the
data voids the error rates. The rule's version is part of the design, so a harness whose rule moved its
boundaries never continues a run another rule looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import rundir as files
from harness.data.splits import Fold
from harness.errors import HarnessError
from harness.logs import log
from harness.run.analysis import load_run
from harness.rundir import RunDir
from harness.stats import sequential
from harness.stats.flags import never_learned
from harness.stats.registry import resolve_metric
from harness.study.loader import Arm


def settled_stop(run_dir: Path, spec: Any, arms: Sequence[str], fold_order: object) -> SettledStop | None:
    """The rule when the study asks to stop when settled (a plain run; tuning's trials order folds themselves)."""
    if not spec.cv.stop_when_settled or fold_order is not None:
        return None
    if len(arms) < 2:
        log.warning(f"cv.stop_when_settled: only {', '.join(arms)} runs, so no verdict to settle; every one of the "
                    f"{spec.cv.repeats} repeats runs")
        return None
    return SettledStop(run_dir, spec, arms)


class SettledStop:
    """The sequential rule's bookkeeping for one run directory."""

    def __init__(self, run_dir: Path, spec: Any, arms: Sequence[str]):
        compare, cv = spec.compare, spec.cv
        if resolve_metric(compare.metric).on_test:
            raise HarnessError(f"cv.stop_when_settled: compare.metric {compare.metric!r} is scored on the held-out "
                               "test set; the rule looks at cross-validation scores: choose a CV metric")
        baseline = compare.baseline or arms[0]
        if baseline not in arms:
            raise HarnessError(f"cv.stop_when_settled needs the baseline {baseline!r} in the run: add it to --arms")
        self.run = RunDir(run_dir)
        self.path = self.run.path_of(files.STOPPING)  # named in messages
        self.run_dir, self.arms, self.baseline = run_dir, [a for a in arms if a != baseline], baseline
        self.design = {"max_repeats": cv.repeats, "folds": cv.folds, "metric": compare.metric, "baseline": baseline,
                       "alpha": compare.alpha, "rope": compare.rope, "rule_version": sequential.RULE_VERSION}
        self._check_design()
        self.record: dict[str, Any] = {"rule": "group-sequential corrected t, Lan-DeMets O'Brien-Fleming spending, "
                                               "ROPE equivalence (harness.stats.sequential)",
                                       **self.design, "status": "running", "repeats_run": 0, "reason": "",
                                       "decisions": dict.fromkeys(self.arms, "continue"), "looks": []}

    def _check_design(self) -> None:
        try:
            before = self.run.stopping(strict=True)
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{self.path} is unreadable ({exc}); remove it only if no repeat was looked at, "
                               "else start over with --fresh") from None
        if before is None:
            return
        before.setdefault("rule_version", 1)  # records from before the version was kept used rule 1
        changed = {k: (before.get(k), v) for k, v in self.design.items() if before.get(k) != v}
        if changed:
            what = "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise HarnessError(f"{self.path}: cv.stop_when_settled fixed its design at the first look, and the study "
                               f"now changes it ({what}); changing it after looking at the data voids the stated "
                               "error rates: restore the study's values, or start over with --fresh or another --out")

    @staticmethod
    def batches(cells: Sequence[tuple[Arm, Fold]]) -> list[list[tuple[Arm, Fold]]]:
        """The cells grouped by repeat, in repeat order (every arm, every fold of repeat r before r + 1)."""
        repeats = sorted({fold.repeat for _, fold in cells})
        return [[(arm, fold) for arm, fold in cells if fold.repeat == r] for r in repeats]

    def look(self, repeat: int, failed: int, refresh: Callable[[], object], log: Callable[[str], None]) -> bool:
        """After repeat ``repeat`` (0-based): decide every unsettled arm, save the record; True to stop.
        ``refresh`` writes results.csv from the finished cells."""
        number = repeat + 1
        self.record["repeats_run"] = number
        if failed:
            return self._end("incomplete", f"{failed} cell(s) of repeat {repeat} failed: no look taken and no "
                                           "further repeat run; rerun to retry them", log)
        refresh()
        run = load_run(self.run_dir, baseline=self.baseline, metric=self.design["metric"],
                       alpha=self.design["alpha"], rope=self.design["rope"])
        table = run.table()
        table = table[table.index.get_level_values("repeat") <= repeat]
        sign = 1.0 if run.metric.higher_is_better else -1.0
        entries = {}
        for arm in self.arms:
            if self.record["decisions"][arm] in sequential.SETTLED:
                continue
            d = (sign * (table[arm] - table[self.baseline])).dropna().to_numpy()
            if len(d) < 2:  # e.g. every fold of the arm diverged: no look possible, and at the last look no verdict
                decision = "inconclusive" if number >= self.design["max_repeats"] else "continue"
                entries[arm] = {"decision": decision, "reason": f"{len(d)} fold(s) with a finite {run.metric.column}"}
                self.record["decisions"][arm] = decision
                continue
            looked = run.results[run.results["repeat"] <= repeat]
            if never_learned(looked, arm) and never_learned(looked, self.baseline):  # equal failures settle nothing
                decision = "inconclusive" if number >= self.design["max_repeats"] else "continue"
                entries[arm] = {"decision": decision, "reason": "in every fold neither arm's validation accuracy beat "
                                                                "the majority-class rate: two failures, not a comparison"}
                self.record["decisions"][arm] = decision
                continue
            result = sequential.decide(d, look=number, folds=self.design["folds"],
                                       max_repeats=self.design["max_repeats"], test_train_ratio=run.test_train_ratio,
                                       alpha=self.design["alpha"], rope=self.design["rope"])
            entries[arm] = asdict(result)
            self.record["decisions"][arm] = result.decision
        self.record["looks"].append({"repeat": number, "arms": entries})
        log(f"look after repeat {number} of {self.design['max_repeats']}: " +
            "; ".join(f"{arm} {e['decision']} ({e['reason']})" for arm, e in entries.items()))
        if all(d in sequential.SETTLED for d in self.record["decisions"].values()):
            return self._end("settled", "every arm settled", log)
        if number >= self.design["max_repeats"]:
            return self._end("exhausted", "the maximum number of repeats ran and not every arm settled", log)
        self._save()
        return False

    def _end(self, status: str, reason: str, log: Callable[[str], None]) -> bool:
        self.record.update(status=status, reason=reason)
        self._save()
        log(sequential.describe(self.record))
        return True

    def _save(self) -> None:
        self.run.write_stopping(self.record)
