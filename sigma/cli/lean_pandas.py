"""pandas for the `sigma` command, loaded without pyarrow; imported for that side effect first.

pandas 3 imports pyarrow as it loads whenever pyarrow is installed (to back its string
columns), which cost every command ~35 MB of memory and a third of a second. The command then
takes the string columns pandas has without pyarrow (Python strings, what pandas 2 did), and
pyarrow loads only where Parquet is read or written (`sigma.feeds.parquet_source`,
`sigma.reports.export_parquet`), which import it themselves. A process that has imported
pandas or pyarrow already (a test run, a program embedding the CLI) is left as it is.
"""

from __future__ import annotations

import sys

if "pandas" not in sys.modules and "pyarrow" not in sys.modules:
    # A None entry makes `import pyarrow` raise ImportError, which pandas reads as "not
    # installed"; the entry goes at once so that a later import finds the real package.
    sys.modules["pyarrow"] = None  # type: ignore[assignment]
    try:
        import pandas  # noqa: F401
    finally:
        del sys.modules["pyarrow"]
