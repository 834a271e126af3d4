"""The competitors' environment: a venv of its own beside the benchmarks, so backtesting.py,
vectorbt and backtrader are measured as their users install them, and none of them is a
dependency of SIGMA.

`benchmarks/.venv-ref` is made on first use (`python3.11 -m venv`, then pip installs
REFERENCE_PACKAGES from the package index pip is set up with) and reused after. Each job runs
`_ref_jobs.py` there as a subprocess on bars written to a temporary .npz file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sigma.strategies.indicators import sma

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SIGMA_BENCH_REF_VENV", HERE / ".venv-ref"))
REFERENCE_PACKAGES = ("backtesting", "vectorbt", "backtrader")
_PYTHON = "python3.11"


class ReferenceUnavailable(RuntimeError):
    """The reference environment could not be made; the message says which step failed."""


def ref_python() -> Path:
    """The reference venv's interpreter, made (once) if missing."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if stamp.exists():
        return python
    steps = [
        [_PYTHON, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", *REFERENCE_PACKAGES],
    ]
    for step in steps:
        print(f"# reference env: {' '.join(step)}", file=sys.stderr, flush=True)
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ReferenceUnavailable(f"{' '.join(step)} failed: {done.stderr.strip()[-500:]}")
    stamp.touch()
    return python


def bars_file(bars: pd.DataFrame, periods: Iterable[int], folder: Path) -> Path:
    """`bars` and SIGMA's SMA of the close for each of `periods`, as an .npz the jobs read."""
    close = bars["close"].to_numpy(dtype=np.float64)
    arrays: dict[str, Any] = {
        name: bars[name].to_numpy(dtype=np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }
    stamps = pd.DatetimeIndex(bars.index).tz_convert("UTC").tz_localize(None)
    arrays["ts"] = stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
    for n in sorted(set(periods)):
        arrays[f"sma_{n}"] = sma(close, n)
    path = folder / "bars.npz"
    np.savez(path, **arrays)
    return path


def run_job(job: str, bars_path: Path, **args: Any) -> dict[str, Any]:
    """Run one `_ref_jobs.py` job in the reference venv; its JSON answer."""
    done = subprocess.run(
        [str(ref_python()), str(HERE / "_ref_jobs.py"), job, str(bars_path), json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        # backtesting.py's progress bars are not part of its speed (read when tqdm loads).
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"reference job {job} failed: {done.stderr.strip()[-1000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for the bars files of one benchmark run."""
    return tempfile.TemporaryDirectory(prefix="sigma-bench-")
