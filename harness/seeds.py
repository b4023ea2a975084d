"""Independent random streams from one study seed (numpy ``SeedSequence``).

Every stream is ``SeedSequence(seed, spawn_key=(purpose, *keys))`` — the same child that
``SeedSequence(seed).spawn`` hands out — so (seed 0, repeat 1) and (seed 1000, repeat 0) are
unrelated streams, unlike the older ``seed + 1000 * repeat``. Purposes are fixed numbers, so a
stream never changes when another purpose is added.

Which seed each repeat uses per source of randomness (``cv.vary``, ``cv.variance``):

Four sources feed a cell: the data ``split`` (the k folds and their inner selection split), the
weight ``init`` (torch's global generator, seeded per fold before the model is built; it also feeds
any later draw from that generator, e.g. dropout), the sample ``order`` and the ``augment`` draws.
Each source's stream is keyed by a *seed key* in place of the repeat number: a repeat that varies a
source uses its own number as that source's key, a repeat that does not uses 0 (repeat 0's seed).

- ``cv.vary`` (default: all four): repeats 1.. vary the listed sources together; the default keys every
  source by the repeat, exactly as before ``vary`` existed.
- ``cv.variance: {sources, seeds, together}``: one at a time. Repeat 0 is the shared base (every key
  0); then, for each listed source in order, ``seeds - 1`` repeats vary that source alone; with
  ``together``, ``seeds - 1`` more vary every listed source at once. ``cv.repeats`` is set to the total.

The folds depend only on the split key, so every arm sees the same folds in every repeat (paired).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

PURPOSES = {"split": 0, "inner": 1, "init": 2, "fold": 3, "order": 4, "augment": 5}


def stream(seed: int, purpose: str, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of one purpose (split, inner, init, fold, order, augment) at ``keys``."""
    return np.random.SeedSequence(int(seed), spawn_key=(PURPOSES[purpose], *(int(k) for k in keys)))


def stream_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit integer seed for torch generators from :func:`stream`."""
    return int(stream(seed, purpose, *keys).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def sklearn_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 32-bit ``random_state`` for scikit-learn splitters from :func:`stream`."""
    return int(stream(seed, purpose, *keys).generate_state(1, np.uint32)[0])


def seed_for(*parts: object) -> int:
    """A stable 63-bit seed from any parts (never Python's salted ``hash``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


CVSpec = Any  # harness.study.schema.CVSpec (not imported: the schema imports this module)

SOURCES: tuple[str, ...] = ("split", "init", "order", "augment")
TOGETHER = "together"


@dataclass(frozen=True)
class SeedGroup:
    """Repeats that differ only in ``sources`` (the others share repeat 0's seeds)."""

    label: str  # a source name, "together", or "+"-joined sources (cv.vary)
    sources: frozenset[str]
    repeats: tuple[int, ...]


def design_repeats(cv: CVSpec) -> int:
    """The number of repeats the one-at-a-time design needs (``cv.repeats`` otherwise)."""
    if cv.variance is None:
        return cv.repeats
    blocks = len(cv.variance.sources) + int(cv.variance.together)
    return 1 + blocks * (cv.variance.seeds - 1)


def varied_sources(cv: CVSpec) -> list[frozenset[str]]:
    """Per repeat, the sources whose seed it changes (repeat 0 changes none: it is the base)."""
    if cv.variance is None:
        return [frozenset()] + [frozenset(cv.vary)] * (cv.repeats - 1)
    design = cv.variance
    blocks = [frozenset([s]) for s in design.sources] + ([frozenset(design.sources)] if design.together else [])
    return [frozenset()] + [block for block in blocks for _ in range(design.seeds - 1)]


def seed_key(cv: CVSpec, source: str, repeat: int) -> int:
    """The key ``source``'s stream uses in ``repeat``: the repeat itself when it varies the source, else 0."""
    if source not in SOURCES:
        raise KeyError(source)
    if cv.variance is None:  # fast path, and the default's keys are exactly the repeat numbers
        return repeat if source in cv.vary else 0
    return repeat if source in varied_sources(cv)[repeat] else 0


def cell_seeds(seed: int, cv: CVSpec, repeat: int, fold: int) -> dict[str, int]:
    """The torch seeds of one cell: ``init`` (the global generator before the model is built) and the
    fold seeds the trainer derives each epoch's ``order`` and ``augment`` streams from. By default they
    are the streams (seed, init, repeat, fold) and (seed, fold, repeat, fold), as before ``cv.vary``."""
    return {"init": stream_seed(seed, "init", seed_key(cv, "init", repeat), fold),
            "order": stream_seed(seed, "fold", seed_key(cv, "order", repeat), fold),
            "augment": stream_seed(seed, "fold", seed_key(cv, "augment", repeat), fold)}


def seed_groups(cv: CVSpec) -> list[SeedGroup]:
    """The design's groups of repeats, each with the base repeat 0: per source (one at a time), the
    listed sources together, or (``cv.vary``) every repeat under the listed sources."""
    per_repeat = varied_sources(cv)
    if cv.variance is None:
        if cv.repeats < 2:
            return []
        label = "all" if set(cv.vary) == set(SOURCES) else "+".join(s for s in SOURCES if s in cv.vary)
        return [SeedGroup(label, frozenset(cv.vary), tuple(range(cv.repeats)))]
    design = cv.variance
    wanted: list[tuple[str, frozenset[str]]] = [(s, frozenset([s])) for s in design.sources]
    if design.together:
        wanted.append((TOGETHER, frozenset(design.sources)))
    return [SeedGroup(label, block, (0, *[r for r, v in enumerate(per_repeat) if v == block]))
            for label, block in wanted]


def is_default(cv: CVSpec) -> bool:
    """Every source varies with the repeat, as before ``cv.vary`` existed (fingerprints leave it out)."""
    return cv.variance is None and set(cv.vary) == set(SOURCES)


def describe(cv: CVSpec) -> str:
    """What varied, for the report's protocol line ('' for the default)."""
    if is_default(cv):
        return ""
    if cv.variance is not None:
        design = cv.variance
        text = (f"seeds varied one at a time: {', '.join(design.sources)}, {design.seeds} settings each "
                "(repeat 0 shared)")
        return text + (", and all of them together" if design.together else "")
    fixed = [s for s in SOURCES if s not in cv.vary]
    return f"repeats vary {' + '.join(s for s in SOURCES if s in cv.vary)} only ({', '.join(fixed)} fixed at repeat 0's)"


def check_seeding(cv: CVSpec) -> None:
    """``cv.vary`` / ``cv.variance`` are consistent; sets ``cv.repeats`` for the one-at-a-time design."""
    if len(set(cv.vary)) != len(cv.vary):
        raise ValueError("cv.vary lists a source twice")
    if not cv.vary:
        raise ValueError("cv.vary is empty: every repeat would be identical; list at least one of "
                         f"{', '.join(SOURCES)} (or remove cv.vary: all of them vary)")
    check_stopping(cv)
    if cv.variance is None:
        return
    if set(cv.vary) != set(SOURCES):
        raise ValueError("cv.vary and cv.variance both say what varies: keep one (cv.variance varies each of its "
                         "sources on its own)")
    needed = design_repeats(cv)
    if "repeats" in cv.model_fields_set and cv.repeats != needed:
        raise ValueError(f"cv.variance needs {needed} repeats (1 shared + {needed - 1} varying one source at a time); "
                         f"cv.repeats is {cv.repeats}: remove cv.repeats (it is set for you)")
    if needed > 100:
        raise ValueError(f"cv.variance needs {needed} repeats, more than the 100 allowed; lower seeds")
    cv.repeats = needed


def check_stopping(cv: CVSpec) -> None:
    """``cv.stop_when_settled`` needs repeats to stop between, and repeats that are draws of one design."""
    if not cv.stop_when_settled:
        return
    if cv.variance is not None:
        raise ValueError("cv.stop_when_settled and cv.variance do not mix: the one-at-a-time design needs all its "
                         "repeats; remove one of them")
    if cv.fold_column is not None:
        raise ValueError("cv.stop_when_settled needs repeats, and predefined folds (cv.fold_column) have only one "
                         "split; remove cv.stop_when_settled or cv.fold_column")
    if cv.repeats < 2:
        raise ValueError(f"cv.stop_when_settled takes cv.repeats as the maximum number of repeats; it is {cv.repeats}: "
                         "set cv.repeats to 2 or more (e.g. 10)")
