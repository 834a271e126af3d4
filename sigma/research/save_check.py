"""May optimised parameters replace the ones in force? Only when the search did at least as
well out of sample as those parameters, on the same walk-forward folds and by the same
objective: `sigma optimize --save` refuses otherwise and says why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sigma.research.objectives import OBJECTIVES
from sigma.research.walk_forward import WalkForwardResult, score_fold
from sigma.strategies.base import Strategy


@dataclass(frozen=True, slots=True)
class SaveVerdict:
    """Whether to save, and why."""

    allowed: bool
    reason: str


def judge_save(
    strategy: type[Strategy],
    bars: pd.DataFrame,
    wf: WalkForwardResult,
    in_force: Mapping[str, Any],
    source: str,
    **scoring: Any,
) -> SaveVerdict:
    """Compare the walk-forward's out-of-sample score with `in_force`'s (named `source`, e.g.
    "the defaults") on the same test windows, by the same objective: the means over the folds
    where both got a score (a fold without one is never averaged in). Refused when the search
    has no out-of-sample score, none on a fold where `in_force` has one, or a lower one."""
    label = OBJECTIVES[str(scoring.get("objective", "sharpe"))]
    tests = [score_fold(strategy, in_force, bars, f.fold, **scoring) for f in wf.folds]
    if wf.oos is None:
        reasons = "; ".join(
            f"fold {i}: {f.test.excluded}" for i, f in enumerate(wf.folds, 1) if f.test.excluded
        )
        return SaveVerdict(False, f"the search has no out-of-sample {label} ({reasons})")
    missing = [
        f"fold {i} ({f.test.excluded}), where {source} scored {t.scored:.3f}"
        for i, (f, t) in enumerate(zip(wf.folds, tests, strict=True), 1)
        if f.test.scored is None and t.scored is not None
    ]
    if missing:
        return SaveVerdict(False, f"no out-of-sample {label} on {'; '.join(missing)}")
    both = [
        (f.test.scored, t.scored)
        for f, t in zip(wf.folds, tests, strict=True)
        if f.test.scored is not None and t.scored is not None
    ]
    if not both:
        return SaveVerdict(True, f"out-of-sample {label} {wf.oos:.3f}; {source} have none")
    found = sum(a for a, _ in both) / len(both)
    baseline = sum(b for _, b in both) / len(both)
    compared = f"on the {len(both)} of {len(wf.folds)} folds both scored"
    if found < baseline:
        return SaveVerdict(
            False,
            f"out-of-sample {label} {found:.3f} is worse than {baseline:.3f} of {source} "
            f"{compared}",
        )
    return SaveVerdict(
        True, f"out-of-sample {label} {found:.3f} vs {baseline:.3f} of {source} {compared}"
    )
