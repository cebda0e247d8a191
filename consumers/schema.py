"""The projection's tables: a public contract for SQL users.

Each table and column is declared once, here, with its documentation;
the DDL and ``docs/sql.md`` are both generated from these declarations (a
test checks the doc page is current). Changing a table means bumping
:data:`SCHEMA_VERSION`: projections are derived data, so an old file is not
migrated but rebuilt from the log.

Every time column is the log's time, when the log took the event (the
embedded log's append time, the Kafka broker's ``LogAppendTime``), except
``events.occurred_at``, what the writer's own clock said.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 7

MAP = "MAP(VARCHAR, VARCHAR)"
PRODUCER = "STRUCT(kind VARCHAR, name VARCHAR, uri VARCHAR, owner VARCHAR)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    #: for ``artifacts``: the ``ArtifactLogged`` field the column is copied from, as
    #: it is (a map as a map, a record as a struct); None for what the rules derive
    logged: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]

    def ddl(self) -> str:
        cols = ",\n    ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {cols}\n);"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _t(name: str, doc: str, *cols: tuple[str, ...]) -> Table:
    return Table(name, doc, tuple(Column(*c) for c in cols))


ARTIFACTS = _t(
    "artifacts",
    "One row per artifact version, deleted versions included (``deleted`` is true).",
    ("project", "VARCHAR", "Project name."),
    ("key", "VARCHAR", "Artifact key, as the user passed it."),
    (
        "iteration",
        "INTEGER",
        "Iteration (hyper-parameter child) number; 0 for the parent.",
        "iteration",
    ),
    ("uid", "VARCHAR", "The version's unique, deterministic id.", "uid"),
    ("kind", "VARCHAR", "artifact, dir, plot, table, dataset, model, feature-set, ...", "kind"),
    ("category", "VARCHAR", "URI category: artifacts, datasets, models, feature-sets, ..."),
    ("tree", "VARCHAR", "Producer tree: the uid of the run that logged it, or empty.", "tree"),
    (
        "hash",
        "VARCHAR",
        "sha256 of the content (of the manifest for directories); NULL if none.",
        "hash",
    ),
    ("size", "BIGINT", "Content size in bytes (total for directories).", "size"),
    (
        "target_path",
        "VARCHAR",
        "URL of the content-addressed blob holding the bytes.",
        "target_path",
    ),
    ("format", "VARCHAR", "Content format: csv, parquet, png, ...", "format"),
    ("filename", "VARCHAR", "Original file name, used to name downloads.", "filename"),
    ("labels", MAP, "Labels (mutable: ArtifactUpdated changes them in place).", "labels"),
    (
        "producer",
        PRODUCER,
        "What produced the version: kind (run, client), name, uri, owner.",
        "producer",
    ),
    ("extra_data", MAP, "Links: name to pinned store URI or URL.", "extra_data"),
    (
        "spec",
        "JSON",
        "Kind-specific metadata: dataset schema/preview/stats, model metrics...",
        "spec",
    ),
    ("description", "VARCHAR", "Free text.", "description"),
    ("created", "TIMESTAMPTZ", "When the version was first logged."),
    ("updated", "TIMESTAMPTZ", "When the version last changed (logged again, updated, deleted)."),
    ("created_by", "VARCHAR", "Actor of the first ArtifactLogged event."),
    ("updated_by", "VARCHAR", "Actor of the last event that changed the version."),
    ("deleted", "BOOLEAN", "True once an ArtifactDeleted event deleted the version."),
    ("log_partition", "INTEGER", "Log partition of the version's last ArtifactLogged event."),
    ("log_offset", "BIGINT", "Log offset of that event; orders versions of a key (latest)."),
)

#: (column, field) of the ``artifacts`` columns an ``ArtifactLogged`` writes as it
#: carries them; the rules derive the others
LOGGED_FIELDS = tuple((c.name, c.logged) for c in ARTIFACTS.columns if c.logged is not None)

TAGS = _t(
    "tags",
    "Current tags: each (project, key, iteration, tag) names exactly one version. "
    "``latest`` is maintained by the projection: the newest non-deleted version in log order.",
    ("project", "VARCHAR", "Project name."),
    ("key", "VARCHAR", "Artifact key."),
    ("iteration", "INTEGER", "Iteration of the tagged version."),
    ("tag", "VARCHAR", "The tag."),
    ("uid", "VARCHAR", "The version the tag names."),
    ("updated", "TIMESTAMPTZ", "When the tag last moved (the time of the event that moved it)."),
    ("updated_by", "VARCHAR", "Who moved it last."),
    ("from_partition", "INTEGER", "Log position of the event that moved it last..."),
    ("from_offset", "BIGINT", "...its offset."),
)

#: the columns of a tag's validity interval (tag_intervals, the tag_history view)
_INTERVAL = (
    ("project", "VARCHAR", "Project name."),
    ("key", "VARCHAR", "Artifact key."),
    ("iteration", "INTEGER", "Iteration of the tagged version."),
    ("tag", "VARCHAR", "The tag."),
    ("uid", "VARCHAR", "The version the tag named during the interval."),
    ("valid_from", "TIMESTAMPTZ", "Time of the event that put the tag on the version."),
    ("valid_to", "TIMESTAMPTZ", "Time of the event that moved or removed it; NULL if current."),
    ("set_by", "VARCHAR", "Actor who put the tag there (for latest: who logged or deleted)."),
    ("removed_by", "VARCHAR", "Actor whose event ended the interval."),
    ("from_partition", "INTEGER", "Log position of the event that opened the interval..."),
    ("from_offset", "BIGINT", "...its offset."),
    ("to_partition", "INTEGER", "Log position of the event that closed it (NULL if open)..."),
    ("to_offset", "BIGINT", "...its offset."),
)

TAG_INTERVALS = _t(
    "tag_intervals",
    "The closed intervals of ``tag_history`` (a tag named ``uid`` from ``valid_from`` "
    "until ``valid_to``). Written once, when an event moves or removes the tag, and never "
    "updated: the open intervals are the rows of ``tags``. Query ``tag_history``, the view "
    "of both.",
    *_INTERVAL,
)

TAG_HISTORY = _t(
    "tag_history",
    "A view: every tag's history as validity intervals, ``latest`` included: the tag named "
    "``uid`` from ``valid_from`` (inclusive) until ``valid_to`` (exclusive; NULL while it "
    "still does). Which version was ``prod`` at time T: ``valid_from <= T AND "
    "(valid_to IS NULL OR valid_to > T)``. The closed intervals are ``tag_intervals``, "
    "the open ones the current ``tags``.",
    *_INTERVAL,
)

LINEAGE = _t(
    "lineage",
    "Edges from a version (child) to what it was made from or links to (parent).",
    ("project", "VARCHAR", "Child's project."),
    ("key", "VARCHAR", "Child's key."),
    ("uid", "VARCHAR", "Child's version uid."),
    ("relation", "VARCHAR", "source (made from) or extra_data (a link added by the user)."),
    ("name", "VARCHAR", "Source name or extra_data key."),
    ("parent_uri", "VARCHAR", "The parent as asked for (store URI by tag, URL or path)."),
    ("parent_project", "VARCHAR", "Parent's project, for catalog artifacts."),
    ("parent_key", "VARCHAR", "Parent's key, for catalog artifacts."),
    ("parent_uid", "VARCHAR", "The exact parent version used, for catalog artifacts."),
    ("parent_hash", "VARCHAR", "sha256 of the parent's content, when known."),
)

RUNS = _t(
    "runs",
    "Runs (jobs): one row per run uid.",
    ("project", "VARCHAR", "Project name."),
    ("uid", "VARCHAR", "Run uid."),
    ("name", "VARCHAR", "Run name."),
    ("handler", "VARCHAR", "module:function that ran."),
    ("state", "VARCHAR", "running, completed, error or aborted."),
    ("error", "VARCHAR", "Error message when state is error."),
    ("owner", "VARCHAR", "Actor who started the run."),
    ("labels", MAP, "Run labels."),
    ("parameters", "JSON", "Parameters, a JSON object."),
    ("inputs", "JSON", "Inputs: [{name, url, uri, uid, hash}], resolved when the run started."),
    ("results", "JSON", "Results logged with log_result, a JSON object."),
    ("outputs", MAP, "Artifact key to the pinned URI of the version the run logged."),
    ("artifact_path", "VARCHAR", "The run's resolved artifact path."),
    ("started", "TIMESTAMPTZ", "RunStarted time."),
    ("finished", "TIMESTAMPTZ", "RunFinished time, NULL while running."),
)

PROJECTS = _t(
    "projects",
    "Projects that were configured, or that have artifacts or runs.",
    ("name", "VARCHAR", "Project name."),
    ("artifact_path", "VARCHAR", "Default artifact path of the project (may hold templates)."),
    ("description", "VARCHAR", "Free text."),
    ("owner", "VARCHAR", "Owner."),
    ("labels", MAP, "Project labels."),
    ("created", "TIMESTAMPTZ", "First event of the project."),
    ("updated", "TIMESTAMPTZ", "Last ProjectConfigured event."),
)

EVENTS = _t(
    "events",
    "The audit trail: every applied event, in log order.",
    ("partition", "INTEGER", "Log partition."),
    ("offset", "BIGINT", "Log offset within the partition."),
    ("event_id", "VARCHAR", "The event's UUID (idempotency key)."),
    ("type", "VARCHAR", "ArtifactLogged, ArtifactTagged, ... (the payload record name)."),
    ("actor", "VARCHAR", "Who."),
    ("occurred_at", "TIMESTAMPTZ", "When the writer says it happened (its own clock)."),
    (
        "logged_at",
        "TIMESTAMPTZ",
        "When the log took it (the log's clock): the time of every state column and filter.",
    ),
    ("project", "VARCHAR", "Project."),
    ("key", "VARCHAR", "Artifact key, run uid or project name."),
    ("run_uid", "VARCHAR", "The run during which it happened, if any."),
    ("schema_version", "INTEGER", "Envelope schema version the event was written with."),
    ("payload", "JSON", "The decoded payload."),
)

DEAD_LETTERS = _t(
    "dead_letters",
    "Records that could not be decoded or applied, with the reason; skipped, never lost.",
    ("partition", "INTEGER", "Log partition."),
    ("offset", "BIGINT", "Log offset."),
    ("reason", "VARCHAR", "Why the record was not applied."),
    ("event_id", "VARCHAR", "The event's UUID when it decoded, else NULL."),
    ("type", "VARCHAR", "Payload type when it decoded, else NULL."),
    ("payload", "JSON", "The decoded payload when it decoded, else NULL."),
    ("value", "BLOB", "The raw record bytes."),
    ("log_time", "TIMESTAMPTZ", "When the log received the record."),
    ("project", "VARCHAR", "The event's project when it decoded, else NULL."),
)

POSITIONS = _t(
    "positions",
    "Consumer progress: the next offset to read, per partition; committed with the state.",
    ("partition", "INTEGER", "Log partition."),
    ("next_offset", "BIGINT", "Offset of the next record to apply."),
)

META = _t(
    "meta",
    "Facts about the projection file: schema_version, log_id, log_url.",
    ("name", "VARCHAR", "Setting name."),
    ("value", "VARCHAR", "Its value."),
)

TABLES = (
    ARTIFACTS,
    TAGS,
    TAG_INTERVALS,
    LINEAGE,
    RUNS,
    PROJECTS,
    EVENTS,
    DEAD_LETTERS,
    POSITIONS,
    META,
)

VIEWS = {
    "tag_history": (
        TAG_HISTORY.doc,
        """CREATE OR REPLACE VIEW tag_history AS
SELECT project, key, iteration, tag, uid, valid_from, valid_to, set_by, removed_by,
       from_partition, from_offset, to_partition, to_offset
FROM tag_intervals
UNION ALL
SELECT project, key, iteration, tag, uid, updated, NULL::TIMESTAMPTZ, updated_by, NULL::VARCHAR,
       from_partition, from_offset, NULL::INTEGER, NULL::BIGINT
FROM tags""",
    ),
    "latest_artifacts": (
        "The version each key's ``latest`` tag names: one row per (project, key, iteration).",
        """CREATE OR REPLACE VIEW latest_artifacts AS
SELECT a.* FROM artifacts a
JOIN tags t ON t.uid = a.uid AND t.tag = 'latest'""",
    ),
    "artifact_tags": (
        "Every live version with the list of its tags (``tags`` column, sorted).",
        """CREATE OR REPLACE VIEW artifact_tags AS
SELECT a.*, COALESCE(
    (SELECT list(t.tag ORDER BY t.tag) FROM tags t WHERE t.uid = a.uid), []
) AS tags
FROM artifacts a WHERE NOT a.deleted""",
    ),
}

# Single-column ART indexes: DuckDB (2.0) serves a scan from an index only
# when the scan's one pushed-down filter is an equality or IN on the indexed
# column, so point lookups in catalog/query.py filter on one of these columns
# and check the rest in Python. (A composite index is never used for a scan.)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS artifacts_uid ON artifacts(uid)",
    "CREATE INDEX IF NOT EXISTS artifacts_key ON artifacts(key)",
    "CREATE INDEX IF NOT EXISTS tags_key ON tags(key)",
    "CREATE INDEX IF NOT EXISTS tags_uid ON tags(uid)",
    "CREATE INDEX IF NOT EXISTS lineage_child ON lineage(uid)",
    "CREATE INDEX IF NOT EXISTS lineage_parent ON lineage(parent_uid)",
    "CREATE INDEX IF NOT EXISTS events_id ON events(event_id)",
)


def index_name(statement: str) -> str:
    """The name an ``INDEXES`` statement creates."""
    return statement.split(" IF NOT EXISTS ", 1)[1].split(" ", 1)[0]


def ddl() -> list[str]:
    """Every statement that creates the projection's schema."""
    return [t.ddl() for t in TABLES] + list(INDEXES) + [sql for _, sql in VIEWS.values()]


def docs_markdown() -> str:
    """The column reference of ``docs/sql.md`` (between its generated markers)."""
    out = []
    for table, title in [(t, f"`{t.name}`") for t in TABLES] + [
        (TAG_HISTORY, f"`{TAG_HISTORY.name}` (a view)")
    ]:
        out.append(f"### {title}\n\n{table.doc}\n")
        out.append("| column | type | meaning |\n|---|---|---|")
        for c in table.columns:
            out.append(f"| `{c.name}` | `{c.type}` | {c.doc} |")
        out.append("")
    out.append("### Other views\n")
    for name, (doc, _) in VIEWS.items():
        if name != TAG_HISTORY.name:
            out.append(f"- `{name}`: {doc}")
    return "\n".join(out) + "\n"


def update_docs(path: str = "docs/sql.md") -> None:
    """Rewrite the generated part of ``docs/sql.md`` (``python -m catalog.consumers.schema``)."""
    from pathlib import Path

    page = Path(path)
    text = page.read_text("utf-8")
    begin, end = "<!-- tables:begin -->\n", "<!-- tables:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(head + begin + docs_markdown() + end + tail, "utf-8")


if __name__ == "__main__":
    update_docs()
