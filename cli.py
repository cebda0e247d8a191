"""``catalog``: the command line of the artifact catalog.

A thin layer: the group builds one :class:`catalog.Catalog` from ``--log``,
``--db``, ``--project`` (or ``CATALOG_LOG``, ``CATALOG_DB``,
``CATALOG_PROJECT``, ``CATALOG_ARTIFACT_PATH``) and hands it to every
command; each command parses its arguments, makes one library call and
formats the answer. Errors are mapped by attribute: a one-line message on
stderr and the error's ``exit_code``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sys
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from catalog import Catalog, DataItem
from catalog.errors import (
    CatalogError,
    DatasetNotDescribed,
    IntegrityError,
    InvalidInput,
    InvalidKey,
)
from catalog.events.model import describe
from catalog.query import skew_note
from catalog.validation import (
    BIDI_CONTROLS,
    parse_label_args,
    parse_time,
    suggest_key,
    validate_key,
)

pass_catalog = click.make_pass_decorator(Catalog)


class _PathType(click.Path):
    """click's Path, refusing what no file system takes (a NUL byte) as a usage error
    rather than the ValueError its ``os.stat`` raises."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if "\x00" in os.fsdecode(value):
            self.fail(f"{os.fsdecode(value)!r} is not a path: it holds a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


PATH = _PathType(path_type=Path)
#: A path kept as typed (``out/``'s trailing slash means "into this folder").
RAW_PATH = _PathType()

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _set_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from catalog.client import parse_as_of

        catalog = ctx.find_object(Catalog)
        if catalog is not None:
            catalog.as_of = parse_as_of(value)
    return value


AS_OF_OPTION = click.option(
    "--as-of",
    metavar="TIME|POSITION",
    callback=_set_as_of,
    expose_value=False,
    help="Answer as the catalog stood then: a time (2026-03-03T10:00, 3d) or a log "
    "position (N, or P:O,... per partition).",
)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=_default, ensure_ascii=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return shown(",".join(f"{k}={v}" for k, v in value.items()))
    if isinstance(value, list | tuple):
        return shown(",".join(str(v) for v in value))
    return shown(str(value))


def shown(text: str) -> str:
    """``text`` safe for a terminal: control characters (an escape sequence can retitle
    the window or write the clipboard) and bidirectional controls (they reorder what
    follows) become visible escapes such as ``\\x1b``; everything else is kept."""
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable() or (unicodedata.category(ch) != "Cc" and ch not in BIDI_CONTROLS)
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], max_width: int = 60) -> str:
    """A plain aligned text table."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)  # pragma: no cover


class CatalogGroup(click.Group):
    """Maps :class:`CatalogError` to a one-line message and its exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Remember whether this command line asked for JSON (not sys.argv: main(argv)
        # and CliRunner pass their own arguments), so errors use the JSON shape too.
        ctx.meta["catalog.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CatalogError as exc:
            if ctx.meta.get("catalog.json"):
                click.echo(json.dumps(exc.to_dict()), err=True)
            else:
                click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=CatalogGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log",
    metavar="URL",
    help="Event log: file://PATH (embedded, the default) or kafka://HOST:PORT/TOPIC "
    "[env CATALOG_LOG].",
)
@click.option(
    "--db",
    metavar="PATH",
    help="DuckDB projection file this command reads [env CATALOG_DB].",
)
@click.option(
    "--project",
    "-p",
    metavar="NAME",
    help="Default project (else 'default') [env CATALOG_PROJECT].",
)
@click.option(
    "--artifact-path",
    metavar="URL",
    help="Where payloads are stored: a directory or fsspec URL such as s3://bucket/p "
    "[env CATALOG_ARTIFACT_PATH].",
)
@click.option(
    "--api",
    metavar="URL",
    help="Read through this catalog service (`catalog serve`, e.g. http://host:8765) "
    "instead of a local projection file; writes still go to the log and the store. "
    "Its token, if it needs one: CATALOG_TOKEN or CATALOG_TOKEN_FILE [env CATALOG_API].",
)
@click.option(
    "--frozen",
    is_flag=True,
    help="Read the projection file (--db) as it is, never catching it up with the log: "
    "a file made by `catalog replay --until/--to-position --into FILE` shows the catalog "
    "as it stood then. Writes are refused.",
)
@click.option(
    "--no-snapshot",
    is_flag=True,
    help="An empty projection replays the whole log (the reference) instead of starting "
    "from the newest published snapshot and replaying only the tail.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Return from writes once their events are durable, without waiting to learn "
    "whether the projection applied or refused them.",
)
@click.version_option(package_name="catalog")
@click.pass_context
def cli(
    ctx: click.Context,
    log: str | None,
    db: str | None,
    project: str | None,
    artifact_path: str | None,
    api: str | None,
    frozen: bool,
    no_snapshot: bool,
    no_wait: bool,
) -> None:
    """An event-sourced catalog of ML and data artifacts.

    Every log, tag or update is an event on an append-only log; reads come
    from a DuckDB projection of it: this machine's own file, caught up before
    every answer, or a catalog service (--api / CATALOG_API). A write waits
    until its event is applied, and fails (exit 2) if the catalog refused it.

    \b
    Examples:
      catalog log data.csv --key iris --kind dataset --label team=ml --tag v1
      catalog ls --label team=ml --since 7d
      catalog show store://datasets/default/iris:v1
      catalog sql "SELECT key, count(*) FROM artifacts GROUP BY key"
      catalog serve                # one projection for everyone: API + web UI
      catalog replay --until 2026-03-03T00:00 --into then.duckdb
      catalog --db then.duckdb --frozen ls   # the catalog as it stood then
    """
    catalog = Catalog(
        log=log,
        db=db,
        project=project,
        artifact_path=artifact_path,
        api=api,
        wait=not no_wait,
        frozen=frozen,
        no_snapshot=no_snapshot,
    )
    ctx.obj = catalog
    ctx.call_on_close(catalog.close)


# -------------------------------------------------------------------- write


@cli.command("log")
# Existence is checked by Catalog.log_artifact: a one-line InvalidInput (exit 2),
# not click's multi-line usage error.
@click.argument("path", type=PATH)
@click.option("--key", "-k", help="Artifact key (default: the file name).")
@click.option("--project", "-p", help="Project (default: the group's --project).")
@click.option(
    "--kind",
    default="artifact",
    show_default=True,
    help="artifact, dataset, model, plot, table, dir, feature-set, feature-vector.",
)
@click.option("--label", "-l", "labels", multiple=True, metavar="K=V", help="A label; repeat.")
@click.option("--tag", "-t", help="Also put this tag on the new version.")
@click.option("--format", "fmt", help="Content format (default: from the file suffix).")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="URI",
    help="Lineage: what this was made from (store URI, URL or path); repeat.",
)
@click.option("--description", help="Free text.")
@click.option("--artifact-path", help="Store the bytes under this path instead.")
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Logging a directory: store the bytes of symbolic links that point outside it "
    "(refused otherwise: a link to a private file would be handed to every reader).",
)
@JSON_OPTION
@pass_catalog
def log_cmd(
    catalog: Catalog,
    path: Path,
    key: str | None,
    project: str | None,
    kind: str,
    labels: tuple[str, ...],
    tag: str | None,
    fmt: str | None,
    sources: tuple[str, ...],
    description: str | None,
    artifact_path: str | None,
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Log the file or directory PATH as a new version; print its pinned URI.

    A dataset (--kind dataset) in csv, parquet, json or feather gets the
    preview, schema and statistics the SDK computes for a DataFrame (with the
    same size rules); when its content cannot be read as its format, it is
    logged as it is and a note on stderr says why.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetNotDescribed)
        art = catalog.log_artifact(
            key or _key_of(path),
            local_path=path,
            kind=kind,
            project=project,
            labels=parse_label_args(labels),
            tag=tag,
            format=fmt,
            sources=list(sources),
            description=description,
            artifact_path=artifact_path,
            follow_symlinks=follow_symlinks,
        )
    for note in caught:
        if issubclass(note.category, DatasetNotDescribed):
            click.echo(f"note: {note.message}", err=True)
        else:  # not ours to word: shown as Python shows it
            warnings.showwarning(note.message, note.category, note.filename, note.lineno)
    click.echo(art.to_json() if as_json else art.uri)


def _key_of(path: Path) -> str:
    """The key a file is logged under without --key: its name, if that is a valid key."""
    try:
        return validate_key(path.name)
    except InvalidKey as exc:
        suggestion = suggest_key(path.name)
        raise InvalidKey(
            path.name,
            f"{exc.reason}; the key defaults to the file name: give one with --key"
            + (f", e.g. --key {suggestion}" if suggestion else ""),
        ) from None


@cli.command("export-lineage")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["openlineage"]),
    default="openlineage",
    show_default=True,
    help="The output format.",
)
@click.option("--project", "-p", help="Only this project.")
@click.option(
    "--output",
    "-o",
    type=PATH,
    help="Write to this file instead of standard output.",
)
@pass_catalog
def export_lineage(catalog: Catalog, fmt: str, project: str | None, output: Path | None) -> None:
    """Write runs and lineage as OpenLineage RunEvents (JSON Lines).

    START/COMPLETE/FAIL per run with its inputs (exact versions read) and
    outputs; dataset facets carry our version uids and sha256 content hashes,
    so Marquez or DataHub can ingest the catalog's lineage.
    """
    from catalog.openlineage import export_lines

    lines = list(export_lines(catalog, project))
    if output is None:
        for line in lines:
            click.echo(line)
    else:
        output.write_text("".join(line + "\n" for line in lines), "utf-8")
        click.echo(f"wrote {len(lines)} events to {output}")


@cli.command()
@click.argument("uri")
@click.argument("tag")
@JSON_OPTION
@pass_catalog
def tag(catalog: Catalog, uri: str, tag: str, as_json: bool) -> None:
    """Put TAG on the version URI names (moving it from any other version)."""
    art = catalog.tag_artifact(uri, tag)
    click.echo(
        art.to_json() if as_json else f"{art.store_uri(pinned=False).replace(tag=tag)} -> {art.uid}"
    )


@cli.command()
@click.argument("uri")
@click.argument("tag")
@pass_catalog
def untag(catalog: Catalog, uri: str, tag: str) -> None:
    """Remove TAG from the key URI names."""
    catalog.untag_artifact(uri, tag)
    click.echo(f"removed tag {tag}")


@cli.command()
@click.argument("uri")
@click.option("--label", "-l", "labels", multiple=True, metavar="K=V", help="Set a label.")
@click.option("--remove-label", "remove", multiple=True, metavar="K", help="Remove a label.")
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="NAME=URI",
    help="Add an extra_data link to another artifact or URL.",
)
@click.option("--description", help="Replace the description.")
@JSON_OPTION
@pass_catalog
def update(
    catalog: Catalog,
    uri: str,
    labels: tuple[str, ...],
    remove: tuple[str, ...],
    links: tuple[str, ...],
    description: str | None,
    as_json: bool,
) -> None:
    """Change labels, links or description of one version in place."""
    extra = {}
    for item in links:
        name, sep, target = item.partition("=")
        if not sep:
            raise InvalidInput(f"--link {item!r}: expected NAME=URI")
        extra[name] = target
    art = catalog.update_artifact(
        uri,
        labels=parse_label_args(labels),
        remove_labels=remove,
        extra_data=extra,
        description=description,
    )
    click.echo(art.to_json() if as_json else art.uri)


@cli.command()
@click.argument("uri")
@click.option("--all-versions", is_flag=True, help="Delete every version of the key.")
@click.option("--reason", help="Why (kept in the audit trail).")
@pass_catalog
def rm(catalog: Catalog, uri: str, all_versions: bool, reason: str | None) -> None:
    """Delete the version URI names (soft delete: the history stays)."""
    uids = catalog.delete_artifact(uri, all_versions=all_versions, reason=reason)
    click.echo(f"deleted {len(uids)} version(s): {', '.join(uids)}")


# --------------------------------------------------------------------- read


def _item(catalog: Catalog, text: str) -> DataItem:
    """The DataItem of a URL or store URI, or of a bare key (``iris``, ``iris:v1``)."""
    if "://" in text:
        return catalog.get_dataitem(text)
    return catalog.get_dataitem(catalog.get_artifact(text))  # errors name the text as typed


LS_COLUMNS = ["key", "kind", "tags", "labels", "updated", "size", "uid"]


@cli.command()
@click.option("--project", "-p", help="Project (default: the group's --project).")
@click.option("--all-projects", is_flag=True, help="Every project.")
@click.option("--name", "-n", help="Key contains this text (case-insensitive).")
@click.option("--kind", help="Only this kind.")
@click.option("--category", help="artifacts, datasets, models, feature-sets, feature-vectors.")
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    metavar="K=V|K",
    help="Label equals (K=V) or exists (K); repeat to AND.",
)
@click.option("--tag", "-t", help="Versions with this tag (default: latest).")
@click.option("--all-versions", "-a", is_flag=True, help="Every version, not just latest.")
@click.option("--since", metavar="TIME", help="Updated at or after: ISO 8601 or 15m/1h/7d.")
@click.option("--until", metavar="TIME", help="Updated at or before.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@JSON_OPTION
@AS_OF_OPTION
@pass_catalog
def ls(
    catalog: Catalog,
    project: str | None,
    all_projects: bool,
    name: str | None,
    kind: str | None,
    category: str | None,
    labels: tuple[str, ...],
    tag: str | None,
    all_versions: bool,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List artifacts, newest first (the latest version of each key by default)."""
    arts = catalog.list_artifacts(
        project=project,
        name=name,
        kind=kind,
        category=category,
        tag=tag,
        labels=list(labels),
        since=since,
        until=until,
        limit=limit,
        all_versions=all_versions,
        all_projects=all_projects,
    )
    if as_json:
        click.echo(_json([a.to_dict() for a in arts]))
        return
    if not arts and not all_versions and tag is None and (labels or name or since or until):
        # the filter may match versions that are no longer latest: say so
        older = catalog.list_artifacts(
            project=project,
            name=name,
            kind=kind,
            category=category,
            labels=list(labels),
            since=since,
            until=until,
            limit=1001,
            all_versions=True,
            all_projects=all_projects,
        )
        if older:
            count = f"{len(older):,}" if len(older) <= 1000 else "more than 1,000"
            click.echo(
                f"no latest version matches; {count} older version(s) do: add -a "
                "(--all-versions) to list them",
                err=True,
            )
    shown_project = None if all_projects else (project or catalog.project)
    rows = [
        {
            "key": a.key if a.project == shown_project else f"{a.project}/{a.key}",
            "kind": a.kind,
            "tags": a.metadata.tags,
            "labels": a.labels,
            "updated": a.metadata.updated,
            "size": _size(a.size),
            "uid": (a.uid or "")[:12],
        }
        for a in arts
    ]
    click.echo(table(rows, LS_COLUMNS))


@cli.command()
@click.argument("uri")
@click.option("--json", "fmt", flag_value="json", help="Print JSON.")
@click.option("--yaml", "fmt", flag_value="yaml", default=True, help="Print YAML (default).")
@click.option("--deleted", is_flag=True, help="Also show a deleted version (by uid).")
@AS_OF_OPTION
@pass_catalog
def show(catalog: Catalog, uri: str, fmt: str, deleted: bool) -> None:
    """Show one version as an MLRun-like document (kind, metadata, spec, status)."""
    art = catalog.get_artifact(uri, include_deleted=deleted)
    click.echo(art.to_json() if fmt == "json" else art.to_yaml().rstrip())


@cli.command()
@click.argument("uri")
@click.option("--json", "fmt", flag_value="json", help="Write JSON.")
@click.option("--yaml", "fmt", flag_value="yaml", default=True, help="Write YAML (default).")
@click.option("--output", "-o", type=PATH, help="Write to a file.")
@pass_catalog
def export(catalog: Catalog, uri: str, fmt: str, output: Path | None) -> None:
    """Export one version's document (to re-register it elsewhere with import)."""
    art = catalog.get_artifact(uri)
    text = art.to_json() + "\n" if fmt == "json" else art.to_yaml()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        click.echo(str(output))


@cli.command("import")
@click.argument("file", type=PATH)
@click.option(
    "--body",
    type=PATH,
    help="The content, when the document's target path is not reachable here.",
)
@click.option("--project", "-p", help="Register in this project instead of the document's.")
@JSON_OPTION
@pass_catalog
def import_cmd(
    catalog: Catalog, file: Path, body: Path | None, project: str | None, as_json: bool
) -> None:
    """Re-register a version from a document written by export (YAML or JSON).

    The version keeps its uid; its bytes must exist at the document's target
    path (they are re-hashed) or be given with --body.
    """
    import yaml

    try:
        document = yaml.safe_load(file.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read {file}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput(f"{file} does not hold an artifact document")
    art = catalog.import_artifact(document, body_path=body, project=project)
    click.echo(art.to_json() if as_json else art.uri)


@cli.command()
@click.argument("uri")
@click.argument("dest", type=RAW_PATH)
@pass_catalog
def get(catalog: Catalog, uri: str, dest: str) -> None:
    """Download the content of URI to DEST, verified against its hash.

    \b
    DEST is the file to write; an existing directory, or a path ending in
    "/", is the folder to write into (made if missing), and the file keeps
    its recorded name. A directory artifact downloads into DEST as a folder.
    """
    item = _item(catalog, uri)
    folder = dest.endswith(("/", os.sep))
    target = Path(dest)
    is_dir_artifact = item.meta is not None and item.meta.spec.format == "dir"
    if target.exists() and not target.is_dir() and (folder or is_dir_artifact):
        what = "a directory artifact" if is_dir_artifact else "the file"
        raise InvalidInput(f"{dest} is a file: {what} cannot be written into it")
    if not is_dir_artifact and (folder or target.is_dir()):
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"cannot make the folder {dest}: {exc.strerror or exc}") from None
        # Only the last component of the recorded name: never write outside DEST.
        name = ""
        if item.meta is not None:
            name = Path(str(item.meta.spec.filename or "").replace("\\", "/")).name
        usable = name not in ("", ".", "..") and name.isprintable() and len(name.encode()) <= 200
        target = target / (name if usable else item.key)
    try:  # a file's missing folders are made, as the folder form makes its folder
        (target if is_dir_artifact else target.parent).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidInput(f"cannot write {target}: a file stands where a folder must be") from None
    except OSError as exc:
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        written = item.download(target)
    except IsADirectoryError:
        raise InvalidInput(f"{target} is a directory: give a file name, or DEST/") from None
    except (NotADirectoryError, FileExistsError) as exc:
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    click.echo(written)


@cli.command()
@click.argument("statement")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@AS_OF_OPTION
@pass_catalog
def sql(catalog: Catalog, statement: str, fmt: str, as_json: bool) -> None:
    """Run a read-only SQL query over the catalog's tables.

    Tables: artifacts, tags, lineage, runs, projects, events, dead_letters,
    positions; views latest_artifacts, artifact_tags (docs/sql.md). Anything
    that writes, reads files or loads extensions is refused. MAP columns
    (labels) show as k=v,... in tables and CSV, and as objects in JSON.
    """
    import pyarrow as pa

    result = catalog.sql(statement)
    fmt = "json" if as_json else fmt
    maps = [
        name
        for name, kind in zip(result.column_names, result.schema.types, strict=True)
        if pa.types.is_map(kind)
    ]
    rows = result.to_pylist()
    for row in rows:  # Arrow gives a MAP as a list of (key, value) pairs
        for name in maps:
            if row[name] is not None:
                row[name] = dict(row[name])
    if fmt == "json":
        click.echo(_json(rows))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.column_names)
        for r in rows:
            writer.writerow([_cell(r[c]) for c in result.column_names])
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(table(rows, result.column_names))
        click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


@cli.command()
@click.argument("uri")
@click.option(
    "--upstream",
    "direction",
    flag_value="upstream",
    default=True,
    help="What it was made from (default).",
)
@click.option("--downstream", "direction", flag_value="downstream", help="What was made from it.")
@click.option("--depth", type=click.IntRange(min=1, max=100), default=5, show_default=True)
@JSON_OPTION
@AS_OF_OPTION
@pass_catalog
def lineage(catalog: Catalog, uri: str, direction: str, depth: int, as_json: bool) -> None:
    """Show the lineage of a version, hop by hop, then its links apart.

    Lineage is what the version was made from (--upstream) or what was made
    from it (--downstream). Links (extra_data: a model's plots, a dataset's
    report) are not lineage, and are listed after it, both ways, for this
    version only. --json prints {"edges": [...], "links": [...],
    "linked_from": [...]}.
    """
    edges = catalog.lineage(uri, direction=direction, depth=depth)
    links = catalog.links(uri)
    if as_json:
        click.echo(_json({"edges": edges, **links}))
        return
    if edges:
        rows = [
            {
                "depth": e["depth"],
                "child": _version(e["key"], e["uid"]),
                "relation": e["relation"],
                "parent": _parent(e),
                "asked for": e["parent_uri"],
            }
            for e in edges
        ]
        click.echo(table(rows, ["depth", "child", "relation", "parent", "asked for"], 80))
    else:
        click.echo(f"no {direction} lineage")
    linked = [
        {"from": _version(e["key"], e["uid"]), "link": e["name"], "to": _parent(e)}
        for e in [*links["links"], *links["linked_from"]]
    ]
    if linked:
        click.echo("\nlinks (extra_data), not lineage:")
        click.echo(table(linked, ["from", "link", "to"], 80))


def _version(key: str, uid: str | None) -> str:
    return f"{key}@{(uid or '')[:12]}"


def _parent(edge: dict[str, Any]) -> str:
    """An edge's parent: the version it resolved to, else the URL as recorded."""
    if edge["parent_key"]:
        return _version(edge["parent_key"], edge["parent_uid"])
    return str(edge["parent_uri"])


AUDIT_COLUMNS = ["position", "time", "actor", "type", "project", "key", "what"]


def _audit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r["payload"] = json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
        r["position"] = f"{r['partition']}:{r['offset']}"
        r["what"] = describe(r["type"], r["payload"])
        # the log's time; what a writer with a wrong clock claimed is said beside it
        skew = skew_note(r["clock_skew_s"])
        claimed = f" ({skew}: {_cell(r['occurred_at'])})" if skew else ""
        r["time"] = _cell(r["logged_at"]) + claimed
    return rows


def _print_audit(rows: list[dict[str, Any]], fmt: str, header: bool = True) -> None:
    if fmt == "json":
        for r in rows:  # JSON Lines: one event per line, streamable with --follow
            for name in ("position", "what", "time"):
                r.pop(name, None)
            click.echo(json.dumps(r, default=_default, ensure_ascii=False, sort_keys=True))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(AUDIT_COLUMNS + ["event_id"])
        for r in rows:
            writer.writerow([_cell(r[c]) for c in AUDIT_COLUMNS] + [r["event_id"]])
        click.echo(buffer.getvalue(), nl=False)
    elif rows or header:
        text = table(rows, AUDIT_COLUMNS, 70)
        click.echo(text if header else "\n".join(text.splitlines()[1:]))


@cli.command()
@click.option("--project", "-p", help="Only this project.")
@click.option("--key", "-k", help="Only this artifact key (or run uid).")
@click.option("--actor", help="Only this actor.")
@click.option("--type", "etype", help="Only this event type, e.g. ArtifactTagged.")
@click.option("--since", metavar="TIME", help="At or after: ISO 8601 or 15m/1h/7d.")
@click.option("--until", metavar="TIME", help="At or before.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--dead-letters", is_flag=True, help="List records that were not applied.")
@click.option(
    "--event",
    "event_id",
    metavar="EVENT_ID",
    help="Show one event in full: envelope, payload, schema version, position.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until ^C.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="json is JSON Lines, one event per line.",
)
@JSON_OPTION
@pass_catalog
def audit(
    catalog: Catalog,
    project: str | None,
    key: str | None,
    actor: str | None,
    etype: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    dead_letters: bool,
    event_id: str | None,
    follow: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Who did what, when: the event history in log order.

    \b
    Examples:
      catalog audit --key model --type ArtifactTagged     # who moved the tags of model
      catalog audit --type ArtifactDeleted --since 7d     # what was deleted this week
      catalog audit --actor alice --since 7d --format csv
      catalog audit --event 2f1c…                         # one event in full
    """
    if as_json:
        fmt = "json"
    if event_id is not None:
        click.echo(_json(catalog.audit_event(event_id)))
        return
    if dead_letters:
        rows = catalog.dead_letters(limit)
        if fmt == "json":
            click.echo(_json(rows))
        else:
            click.echo(table(rows, ["partition", "offset", "type", "reason"], 100))
        return
    filters = {
        "project": project,
        "key": key,
        "actor": actor,
        "type": etype,
        "since": since,
        "until": until,
    }
    page, after = catalog.audit_page(None, limit=limit, **filters)
    rows = _audit_rows(page)
    if as_json and not follow:  # --json keeps its historical shape: one JSON array
        for r in rows:
            for name in ("position", "what", "time"):
                r.pop(name, None)
        click.echo(_json(rows))
        return
    _print_audit(rows, fmt)
    if not follow:
        return
    stopping = {"flag": False}

    def stop(signum: int, frame: Any) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping["flag"]:
        catalog.log.wait(after, 0.5)
        new, after = catalog.audit_page(after, **filters)
        _print_audit(_audit_rows(new), fmt, header=False)


@cli.command()
@click.option(
    "--from",
    "since",
    required=True,
    metavar="TIME",
    help="Start (exclusive): ISO 8601 or a duration ago such as 7d.",
)
@click.option("--to", "until", metavar="TIME", help="End (inclusive); default now.")
@click.option("--project", "-p", help="Only this project.")
@JSON_OPTION
@pass_catalog
def diff(
    catalog: Catalog, since: str, until: str | None, project: str | None, as_json: bool
) -> None:
    """What changed between two moments: versions added and deleted, tags moved,
    labels changed — each with actor and time."""
    changes = catalog.diff(since, until, project)
    if as_json:
        click.echo(_json(changes))
        return
    click.echo(f"changes after {changes['from'].isoformat()} up to {changes['to'].isoformat()}")
    sections = [
        ("versions added", changes["added"], ["time", "actor", "project", "key", "kind", "uid"]),
        (
            "versions deleted",
            changes["deleted"],
            ["time", "actor", "project", "key", "uids", "all_versions", "reason"],
        ),
        (
            "tags moved",
            changes["tags"],
            ["time", "actor", "project", "key", "tag", "from_uid", "to_uid"],
        ),
        (
            "labels changed",
            changes["labels"],
            ["time", "actor", "project", "key", "uid", "labels_set", "labels_removed"],
        ),
    ]
    for title, rows, columns in sections:
        click.echo(f"\n{title}: {len(rows)}")
        if rows:
            click.echo(table(rows, columns, 40))


# ---------------------------------------------------------------- operate


@cli.command()
@click.option("--follow", "-f", is_flag=True, help="Keep following the log until SIGTERM/^C.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,  # catalog.consumers.projection.DEFAULT_BATCH (not imported at startup)
    show_default=True,
    help="Records applied per transaction.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="With --follow: answer reads on an ephemeral loopback port, advertised beside the "
    "projection file, so this machine's other commands read through this process instead "
    "of waiting for the file.",
)
@click.option(
    "--status",
    is_flag=True,
    help="Print, per partition, the projection's position, the log's end and the lag "
    "(and the consumer group's committed offset, with ?group=); apply nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="With --status: print JSON.")
@click.option(
    "--openlineage",
    metavar="URL",
    help="Send runs as OpenLineage events to this HTTP endpoint (http(s)://HOST[/PATH]) or "
    "Kafka topic (kafka://HOST:PORT/TOPIC) from where this feed stopped (at least once); "
    "with --follow, as runs start and finish.",
)
@pass_catalog
def consume(
    catalog: Catalog,
    follow: bool,
    batch_size: int,
    serve: bool,
    status: bool,
    as_json: bool,
    openlineage: str | None,
) -> None:
    """Catch the projection up with the log (or follow it).

    \b
    With --follow the projection stays current until SIGTERM or ^C, and (by
    default) every other `catalog` command and SDK call of this machine that
    reads this projection file reads through this process: none waits.
    `catalog serve` does the same on a fixed port, with the web UI.
    --status reports how far the projection is (through the service, with
    CATALOG_API) without applying anything.
    """
    if status:
        rows = catalog.consumer_status()
        if as_json:
            click.echo(_json(rows))
        else:
            click.echo(table(rows, ["partition", "position", "end", "lag", "committed"]))
            click.echo(f"lag: {sum(r['lag'] for r in rows)} record(s)")
        return
    stopping = {"flag": False}

    def stop(signum: int, frame: Any) -> None:
        stopping["flag"] = True

    if openlineage:
        if follow:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        from catalog.lineage_feed import send

        sent = send(catalog, openlineage, follow=follow, stop=lambda: stopping["flag"])
        click.echo(f"sent {sent} OpenLineage event(s) to {openlineage}")
        return

    if follow and serve:
        from catalog.server import Server, serve_forever

        db = catalog.local().db
        server = Server(
            catalog.config,
            db=db,
            ui=False,
            batch_size=batch_size,
            start_from_snapshot=not catalog.no_snapshot,
        )
        serve_forever(server, echo=lambda line: click.echo(line, err=True))
        click.echo(f"applied {server.service.applied_events} record(s); projection at {db}")
        return
    if follow:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    applied = catalog.consume(follow=follow, stop=lambda: stopping["flag"], batch_size=batch_size)
    click.echo(f"applied {applied} record(s); projection at {catalog.config.db}")


@cli.command()
@click.option("--until", metavar="TIME", help="Stop at events after this time.")
@click.option(
    "--to-position", type=click.IntRange(min=0), metavar="N", help="Stop before log offset N."
)
@click.option(
    "--into",
    type=PATH,
    help="Write the rebuilt projection here instead of replacing the live one.",
)
@click.option(
    "--from-snapshot",
    is_flag=True,
    help="Start from the newest usable published snapshot (checked: hashes, digest) and "
    "replay only the log's tail; the whole log if there is none.",
)
@pass_catalog
def replay(
    catalog: Catalog,
    until: str | None,
    to_position: int | None,
    into: Path | None,
    from_snapshot: bool,
) -> None:
    """Rebuild a projection from the log, then swap it in atomically.

    \b
    With --until or --to-position the result is the catalog as it stood then;
    write it --into a file of its own and read it with --frozen:
      catalog replay --until 2026-03-03T00:00 --into then.duckdb
      catalog --db then.duckdb --frozen ls
    """
    if until is not None:
        parse_time(until)  # refuse a bad time before starting
    total = sum(catalog.log_end().values())
    if to_position is not None:
        total = min(total, to_position)
    with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
        path = catalog.replay(
            until=until,
            to_position=to_position,
            into=str(into) if into else None,
            progress=bar.update,
            from_snapshot=from_snapshot,
        )
    click.echo(f"rebuilt {path}")


@cli.group(invoke_without_command=True)
@JSON_OPTION
@click.pass_context
def snapshot(ctx: click.Context, as_json: bool) -> None:
    """Publish a snapshot of the projection now (`catalog snapshot ls` lists them).

    \b
    A snapshot is the projection file (zstd), its positions, schema version,
    DuckDB version and digest, published under CATALOG_SNAPSHOTS (default:
    _snapshots under the artifact path's root) with its manifest written last.
    `catalog serve` and `consume --follow` publish every CATALOG_SNAPSHOT_EVERY
    (N events and/or a time; off on the embedded log unless set) and keep the
    newest CATALOG_SNAPSHOT_KEEP; an empty projection starts from the newest
    usable one and replays only the tail (--no-snapshot: the whole log). When a
    service holds the projection file, it publishes (a write: its write token).
    """
    if ctx.invoked_subcommand is not None:
        return
    catalog = ctx.find_object(Catalog)
    assert catalog is not None
    found = catalog.publish_snapshot()
    if as_json:
        click.echo(_json(found))
    else:
        click.echo(
            f"published {found['name']} at {found['positions']}: {_size(found['size'])} "
            f"({_size(found['raw_size'])} uncompressed), digest {found['digest'][:16]}"
        )


@snapshot.command("ls")
@JSON_OPTION
@pass_catalog
def snapshot_ls(catalog: Catalog, as_json: bool) -> None:
    """List the published snapshots of this catalog's log, newest first."""
    found = catalog.snapshots()
    if as_json:
        click.echo(_json(found))
        return
    rows = [
        {
            "name": s["name"],
            "events": s.get("events"),
            "size": _size(s.get("size")),
            "digest": (s.get("digest") or "")[:16],
            "usable": "yes" if s["usable"] else f"no: {s['problem']}",
        }
        for s in found
    ]
    click.echo(table(rows, ["name", "events", "size", "digest", "usable"], 100))


@cli.command()
@JSON_OPTION
@AS_OF_OPTION
@pass_catalog
def digest(catalog: Catalog, as_json: bool) -> None:
    """Print the canonical digest of the projection's content.

    Two projections of the same log at the same position print the same
    digest, however they were built.
    """
    digests = catalog.digest()
    positions = catalog.positions()
    if as_json:
        # "positions" is one of the table digests; the log end goes under its own key.
        click.echo(_json({**digests, "at": positions}))
    else:
        click.echo(f"{digests['digest']}  at {positions}")


class _Progress:
    """Progress bars on stderr for long maintenance work, one per phase."""

    LABELS = {"blobs": "re-hashing", "replay": "replaying", "scan": "scanning"}

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, phase: str, advance: int, total: int) -> None:
        if phase not in self.bars:
            self.close()
            bar = click.progressbar(
                length=max(total, 1), label=self.LABELS.get(phase, phase), file=sys.stderr
            )
            self.bars[phase] = bar.__enter__()
        self.bars[phase].update(advance)

    def close(self) -> None:
        for bar in self.bars.values():
            if not bar.finished:
                bar.render_finish()
                bar.finished = True


@cli.command()
@click.option("--blobs", is_flag=True, help="Only re-hash the blobs live versions reference.")
@click.option("--projection", is_flag=True, help="Only compare the projection with a replay.")
@JSON_OPTION
@pass_catalog
def verify(catalog: Catalog, blobs: bool, projection: bool, as_json: bool) -> None:
    """Check the stored bytes and the projection against the log (both by default).

    Re-hashes every blob a live version references (content, directory files,
    attachments) and replays the log into a temporary projection to compare
    each table's digest with the live one. Exits with 4 if anything differs.
    """
    from catalog.maintenance import verify as verify_catalog

    progress = _Progress()
    try:
        report = verify_catalog(
            catalog,
            blobs=blobs or not projection,
            projection=projection or not blobs,
            progress=progress,
        )
    finally:
        progress.close()
    if as_json:
        click.echo(_json(report.to_dict()))
    else:
        if blobs or not projection:
            click.echo(
                f"blobs: {report.blobs} re-hashed ({_size(report.bytes)}) for "
                f"{report.versions} live version(s); {report.external} external reference(s)"
            )
        if projection or not blobs:
            same = sum(report.tables.values())
            click.echo(
                f"projection: {same} of {len(report.tables)} tables equal a replay of the log "
                f"to {report.positions}"
            )
        for problem in report.problems:
            click.echo(f"{problem.check}: {problem.kind}: {problem.detail}")
            for uri in problem.referenced_by:
                click.echo(f"    referenced by {uri}")
        click.echo("ok" if report.ok else f"{len(report.problems)} problem(s)")
    if not report.ok:
        click.get_current_context().exit(IntegrityError.exit_code)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only report what would be freed.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Spare blobs written, and versions deleted, more recently than this (90s, 1h, 7d).",
)
@JSON_OPTION
@pass_catalog
def gc(catalog: Catalog, dry_run: bool, grace: str, as_json: bool) -> None:
    """Delete blobs that no live or recently deleted version references.

    Scans every store the catalog names, after catching the projection up
    with the log; blobs younger than the grace period are never deleted, so
    a write in flight is safe if it takes less than that (docs/reliability.md).
    """
    from catalog.maintenance import gc as collect

    progress = _Progress()
    try:
        report = collect(catalog, grace=grace, dry_run=dry_run, progress=progress)
    finally:
        progress.close()
    if as_json:
        click.echo(_json(report.to_dict()))
        return
    for r in report.roots:
        click.echo(
            f"{r.root}: {r.blobs} blob(s), {r.referenced} referenced, {r.young} too young, "
            f"{r.freed} {'to free' if dry_run else 'freed'} ({_size(r.freed_bytes)}), "
            f"{r.temp_freed} temporary file(s) ({_size(r.temp_bytes)})"
            + (f"; {r.error}" if r.error else "")
        )
    if report.stopped_early:
        click.echo("stopped after half the grace period: run gc again")
    verb = "would free" if dry_run else "freed"
    click.echo(
        f"{verb} {report.freed} blob(s), {_size(report.freed_bytes)} ({report.freed_bytes} bytes)"
    )


@cli.command()
@JSON_OPTION
@pass_catalog
def config(catalog: Catalog, as_json: bool) -> None:
    """Show the resolved settings (log, db, artifact path, project, actor...) and
    where each came from: a flag, the environment, the config file or the default
    (in that order of precedence).

    The last row says whether the columnar decoder (big catch-ups and replays)
    was built when the package was installed (it needs a C compiler then).
    """
    from catalog.config import settings_summary

    settings = dict(settings_summary(catalog.config))
    sources = {name: catalog.config.source(name) for name, _ in catalog.config.sources}
    if as_json:
        click.echo(_json({**settings, "sources": sources}))
    else:
        rows = [{"setting": k, "value": v, "from": sources.get(k, "")} for k, v in settings.items()]
        click.echo(table(rows, ["setting", "value", "from"], 200))


ACCESS_FILE_OPTION = click.option(
    "--access-file",
    type=PATH,
    help="The managed tokens' file (default: CATALOG_ACCESS_FILE, else "
    "<data>/access.json beside the service's data).",
)


def _serve_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
            ),
            click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535)),
            click.option(
                "--db",
                "serve_db",
                metavar="PATH",
                help="The projection file the service owns (default: the group's --db).",
            ),
            click.option(
                "--tokens-file",
                type=PATH,
                envvar="CATALOG_TOKENS_FILE",
                help="Tokens, one 'read TOKEN' or 'write TOKEN' per line (also "
                "CATALOG_READ_TOKEN / CATALOG_WRITE_TOKEN). Needed beyond loopback.",
            ),
            click.option(
                "--token",
                hidden=True,
                expose_value=False,
                callback=_refuse_token_flag,
                help="Refused: a token on the command line is visible in ps.",
            ),
            ACCESS_FILE_OPTION,
            click.option("--no-ui", is_flag=True, help="Serve the query API only (no web pages)."),
            click.option(
                "--frozen",
                "serve_frozen",
                is_flag=True,
                help="Serve the file as it is, never catching it up (a `replay --into` "
                "file: the catalog as of then).",
            ),
            click.option(
                "--wait-timeout",
                type=click.FloatRange(min=0),
                default=10.0,
                show_default=True,
                help="Longest a read waits for its min_positions (read-your-writes).",
            ),
            click.option(
                "--apply-interval",
                type=click.FloatRange(min=0),
                default=0.5,
                show_default=True,
                help="Under a steady stream of events, apply them at most this often "
                "(seconds); a read waiting for its own writes is served at once.",
            ),
            click.option(
                "--read-threads",
                type=click.IntRange(min=1),
                help="Threads answering reads (default: one per core, at least 2).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _refuse_token_flag(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.BadParameter(
            "tokens are not taken on the command line (ps shows them to every user): "
            "put them in CATALOG_WRITE_TOKEN / CATALOG_READ_TOKEN or a --tokens-file",
            ctx,
            param,
        )


@cli.group()
def token() -> None:
    """Tokens limited to projects and to read or write, for `catalog serve`.

    \b
    Kept in a small file beside the service's data (--access-file), hashed:
    a token is shown once, when it is created. The service re-reads the file
    when it changes: a new token works, a revoked one fails, at once. Tokens
    from CATALOG_READ_TOKEN / CATALOG_WRITE_TOKEN / --tokens-file keep working
    for every project. A project-limited token sees nothing of other projects
    (lists, search, lineage, audit, dead letters, diff, digest, pages) and may
    not run SQL.

    \b
    Examples:
      catalog token create alice --scope write --project vision --project nlp
      catalog token create dashboards --scope read          # every project
      catalog token list
      catalog token revoke alice
    """


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    default="read",
    show_default=True,
    help="read: every read; write: reads and writes.",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="PROJECT",
    help="A project the token may use (repeat for several; none: every project).",
)
@ACCESS_FILE_OPTION
def token_create(
    name: str, scope: str, projects: tuple[str, ...], access_file: Path | None
) -> None:
    """Create a token NAME and print it (once: only its hash is kept)."""
    from catalog.access import TokenTable, default_path

    table_ = TokenTable(access_file or default_path())
    record, secret = table_.create(name, scope, list(projects) or None)
    shown = record.public()
    click.echo(
        f"created token {record.id} ({record.name}, {record.scope}, projects "
        f"{shown['projects']}) in {table_.path}; it is shown only now:",
        err=True,
    )
    click.echo(secret)


@token.command("list")
@JSON_OPTION
@ACCESS_FILE_OPTION
def token_list(as_json: bool, access_file: Path | None) -> None:
    """The tokens: id, name, scope, projects, created (never the token)."""
    from catalog.access import TokenTable, default_path

    rows = [r.public() for r in TokenTable(access_file or default_path()).list()]
    if as_json:
        click.echo(_json(rows))
    else:
        click.echo(table(rows, ["id", "name", "scope", "projects", "created"], 80))


@token.command("revoke")
@click.argument("which", metavar="ID_OR_NAME")
@ACCESS_FILE_OPTION
def token_revoke(which: str, access_file: Path | None) -> None:
    """Revoke a token: it fails from the next request on (no restart)."""
    from catalog.access import TokenTable, default_path

    record = TokenTable(access_file or default_path()).revoke(which)
    click.echo(f"revoked token {record.id} ({record.name})")


@cli.command()
@_serve_options
@pass_catalog
def serve(
    catalog: Catalog,
    host: str,
    port: int,
    serve_db: str | None,
    tokens_file: Path | None,
    access_file: Path | None,
    no_ui: bool,
    serve_frozen: bool,
    wait_timeout: float,
    apply_interval: float,
    read_threads: int | None,
) -> None:
    """Serve the catalog: one projection, kept current, for every client.

    \b
    Follows the log into its projection file and answers, over HTTP:
      /api/v1/...   the query API every SDK and CLI read uses (CATALOG_API=URL)
      /             the web UI: browse, search, inspect, download, manage
    Clients with no log of their own write through it too (bytes and events).
    Other commands of this machine that read the same projection file read
    through this process. It listens on loopback unless told otherwise; any
    other address needs tokens (CATALOG_READ_TOKEN and CATALOG_WRITE_TOKEN,
    --tokens-file, or tokens limited to projects: catalog token create), and
    TLS from a reverse proxy.

    \b
    Examples:
      catalog serve                               # http://127.0.0.1:8765/
      CATALOG_API=http://127.0.0.1:8765 catalog ls
      catalog serve --frozen --db then.duckdb     # a replay --into file, as it is
    """
    try:
        from catalog.server import Server, make_guard, serve_forever
    except ImportError as exc:  # pragma: no cover - the web stack is a dependency
        from catalog.about import install_hint

        raise InvalidInput(f"serving needs {exc.name}: {install_hint()}") from None
    server = Server(
        catalog.config,
        db=serve_db or catalog.config.db,
        host=host,
        port=port,
        guard=make_guard(
            str(tokens_file) if tokens_file else None, str(access_file) if access_file else None
        ),
        ui=not no_ui,
        wait_timeout=wait_timeout,
        apply_interval=apply_interval,
        read_threads=read_threads,
        frozen=serve_frozen or catalog.frozen,
        start_from_snapshot=not catalog.no_snapshot,
    )
    serve_forever(server, echo=lambda line: click.echo(line, err=True))


@cli.command()
@_serve_options
@click.pass_context
def ui(ctx: click.Context, **options: Any) -> None:
    """The same as `catalog serve` (its former name)."""
    ctx.invoke(serve, **options)


def main(argv: Iterable[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="catalog")


if __name__ == "__main__":  # pragma: no cover
    main()
