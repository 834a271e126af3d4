"""Run every benchmark script in this folder and compare with the previous run.

    .venv/bin/python benchmarks/run_all.py [--quick]

Each script (`*.py` here that defines `main(argv) -> list[dict]`) prints its JSON lines (a
script's `RUN_ALL_ARGV`, if it has one, goes in front of the arguments: `soak.py` runs its
quick version here, not its ten minutes); the
lines of all scripts are stored in `results/latest.jsonl` after the former latest is rotated to
`results/previous.jsonl`. Then, for each result found in both runs (same bench, impl or ratio,
and bar count), one JSON line gives the change in %, e.g.
{"compare": "backtest_speed/sigma_fast/1000000", "metric": "bars_per_s", "previous": ...,
"latest": ..., "change_pct": ...}.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SKIP = {"run_all.py", "common.py"}
METRICS = ("bars_per_s", "combos_per_s", "value")


def scripts() -> list[Path]:
    """The benchmark scripts, in name order."""
    return [
        p for p in sorted(HERE.glob("*.py")) if p.name not in SKIP and not p.name.startswith("_")
    ]


def _load(path: Path) -> Any:
    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def key(row: dict[str, Any]) -> str | None:
    """Identity of a result across runs."""
    what = row.get("impl") or row.get("ratio")
    if "bench" not in row or what is None:
        return None
    return f"{row['bench']}/{what}/{row.get('bars', '')}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(previous: list[dict[str, Any]], latest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Change in % of every metric present in both runs under the same key."""
    before = {k: row for row in previous if (k := key(row))}
    out: list[dict[str, Any]] = []
    for row in latest:
        k = key(row)
        old = before.get(k) if k else None
        if old is None:
            continue
        for metric in METRICS:
            a, b = old.get(metric), row.get(metric)
            if isinstance(a, int | float) and isinstance(b, int | float) and a:
                out.append(
                    {
                        "compare": k,
                        "metric": metric,
                        "previous": a,
                        "latest": b,
                        "change_pct": round(100.0 * (b / a - 1.0), 1),
                    }
                )
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    rows: list[dict[str, Any]] = []
    for path in scripts():
        module = _load(path)
        bench_main = getattr(module, "main", None)
        if bench_main is None:
            continue
        print(f"# {path.name}", file=sys.stderr, flush=True)
        rows.extend(bench_main([*getattr(module, "RUN_ALL_ARGV", []), *argv]))
    RESULTS.mkdir(exist_ok=True)
    latest, previous = RESULTS / "latest.jsonl", RESULTS / "previous.jsonl"
    if latest.exists():
        latest.replace(previous)
    latest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    changes = compare(read_jsonl(previous), rows)
    if not changes:
        print("# no previous run to compare with", file=sys.stderr)
    for change in changes:
        print(json.dumps(change))
    return rows


if __name__ == "__main__":
    main()
