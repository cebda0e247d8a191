"""tests/reliability: faults, bad input and hostile input (issue 7; docs/reliability.md).

Long loops run a reduced count by default; each has a ``slow`` twin with the
full count, run by ``make soak`` (``pytest -m slow``). Every test records what it ran with
:func:`reliability.helpers.record`; the counts are printed at the end of the
session (by tests/conftest.py, added up over ``make test``'s workers), for
docs/reliability.md.
"""

from __future__ import annotations
