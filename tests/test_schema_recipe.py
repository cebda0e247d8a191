"""The recipe of docs/concepts.md, "Adding a field to an event", followed in a copy.

A new ``ArtifactLogged`` field shown as an ``artifacts`` column takes three
edits (the ``.avsc``, the event's dataclass, the column's declaration with the
field it copies) and ``make docs`` (which publishes the new envelope); the
SDK's parameter that sets it is the fourth. This test makes the first three
in a copy of the checkout, publishes, and checks the value reaches the table
on every path a log takes: one event at a time (the rules' event path), and a
batch big enough for the columnar path, the listing included; and that an
event written before the change still reads, with the column empty.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EDITS = [
    (
        "schemas/catalog.ArtifactLogged.avsc",
        '    {"name": "description", "type": ["null", "string"], "default": null, '
        '"doc": "A free-text description."}\n',
        '    {"name": "description", "type": ["null", "string"], "default": null, '
        '"doc": "A free-text description."},\n'
        '    {"name": "licence", "type": ["null", "string"], "default": null, '
        '"doc": "Under which licence the content may be used."}\n',
    ),
    (
        "catalog/events/model.py",
        '    spec: str = "{}"\n    description: str | None = None\n',
        '    spec: str = "{}"\n    description: str | None = None\n'
        "    licence: str | None = None\n",
    ),
    (
        "consumers/schema.py",
        '    ("description", "VARCHAR", "Free text.", "description"),\n',
        '    ("description", "VARCHAR", "Free text.", "description"),\n'
        '    ("licence", "VARCHAR", "Under which licence the content may be used.", "licence"),\n',
    ),
    (
        "consumers/schema.py",
        "SCHEMA_VERSION = ",
        "SCHEMA_VERSION = 1 + ",
    ),
]

CHECK = r"""
import json, sys
from catalog import Catalog
from catalog.events.model import ArtifactLogged, Producer, build_record, new_event

root = sys.argv[1]
cat = Catalog(log=root + "/events.log", artifact_path=root + "/store", project="p", actor="me")

def logged(key, licence, i):
    payload = build_record(ArtifactLogged, {
        "uid": f"{i:032x}", "kind": "model", "producer": Producer(kind="client", name="t"),
        "licence": licence,
    })
    return new_event("p", key, payload, "me")

cat.append_events([logged("one", "MIT", 0)])                                # the event path
cat.append_events([logged(f"k{i}", f"L{i}", i + 1) for i in range(400)])    # the columnar path
rows = cat.sql("SELECT key, licence FROM artifacts").to_pylist()
print(json.dumps({r["key"]: r["licence"] for r in rows}))
"""


def _copy(tmp: Path) -> Path:
    copy = tmp / "checkout"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for name in ("catalog", "consumers", "schemas"):
        shutil.copytree(ROOT / name, copy / name, ignore=skip)
    shutil.copy(ROOT / "cli.py", copy / "cli.py")
    return copy


def _run(copy: Path, code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["PYTHONPATH"] = str(copy)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_new_logged_field_reaches_its_column_in_three_edits(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    # an event written before the change
    _run(
        copy,
        "import sys; from catalog import Catalog; "
        "Catalog(log=sys.argv[1] + '/events.log', artifact_path=sys.argv[1] + '/store', "
        "project='p').log_artifact('before', body=b'old')",
        str(data),
    )
    for path, old, new in EDITS:
        file = copy / path
        text = file.read_text("utf-8")
        assert text.count(old) == 1, (path, old)
        file.write_text(text.replace(old, new), "utf-8")
    published = _run(copy, "from catalog.events.codec import publish; print(publish())")
    assert published.strip().endswith(".avsc"), published  # make docs publishes the envelope

    rows = json.loads(_run(copy, CHECK, str(data)).strip().splitlines()[-1])
    assert rows["one"] == "MIT"
    assert all(rows[f"k{i}"] == f"L{i}" for i in range(400))
    assert rows["before"] is None  # written with the old envelope: the field's default
