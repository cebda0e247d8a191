"""tests/reliability: faults, bad input and hostile input (issue 7; docs/reliability.md).

Long loops run a reduced count by default; each has a ``slow`` twin with the
full count, run by ``make soak`` (``pytest -m slow``). Every test records what it ran with
:func:`reliability.helpers.record`; the counts are printed at the end of the
session, for docs/reliability.md.
"""

from __future__ import annotations

import pytest

from reliability.helpers import COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    terminalreporter.section("reliability counts")
    for name, counts in sorted(COUNTS.items()):
        shown = ", ".join(f"{k}={v}" for k, v in counts.items())
        terminalreporter.write_line(f"{name}: {shown}")
