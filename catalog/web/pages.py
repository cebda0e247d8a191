"""The HTML pages: projects, artifacts, one artifact, runs, and the manage forms.

Each handler parses the request, makes one call into :mod:`catalog.web.data`
under the server's lock, and renders a template. Forms POST with a CSRF token
and answer with a redirect to the page showing the new state (post/redirect/get);
a refused form re-renders the page with the error and status 400.
"""

from __future__ import annotations

import io
import re
import threading
import weakref
import zipfile
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from catalog.artifacts.base import Artifact
from catalog.client import Catalog
from catalog.datastore import DataItem
from catalog.errors import ArtifactNotFound, CatalogError, InvalidInput
from catalog.store import ObjectStore, validate_relative_path
from catalog.validation import validate_project, validate_tag, validate_uid
from catalog.web import data, render
from catalog.web.context import page, ui_of
from catalog.web.security import AUTH_COOKIE, CSRF_FIELD

#: Content up to this size is read (and verified) before the response starts;
#: larger content streams, and a digest mismatch at the end aborts the response.
BUFFER_LIMIT = 32 * 1024 * 1024
CHUNK = 1024 * 1024
#: Directories are zipped as they stream; at most this many at once per server.
ZIP_STREAMS = 2
ZIP_SLOTS = threading.BoundedSemaphore(ZIP_STREAMS)


class Busy(CatalogError):
    """Too many heavy downloads at once: try again."""

    status = 503


MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "yaml": "application/yaml",
    "parquet": "application/vnd.apache.parquet",
}
IMAGES = {"png", "jpg", "jpeg", "gif", "webp"}
#: User HTML and SVG are shown only sandboxed: no script, no same-origin access.
SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"

MESSAGES = {
    "tagged": "Tag {tag} now names this version.",
    "untagged": "Removed tag {tag}.",
    "labels": "Labels saved.",
    "deleted": "Deleted version {uid}.",
}


def _project(request: Request) -> str:
    return validate_project(request.path_params["project"])


def version_params(request: Request) -> dict[str, Any]:
    q = request.query_params
    return {
        "uid": q.get("uid") or None,
        "tag": q.get("tag") or None,
        "iteration": data.ITER.read(q),
    }


def _message(request: Request) -> str | None:
    q = request.query_params
    template = MESSAGES.get(q.get("done", ""))
    if template is None:
        return None
    tag = q.get("tag", "")
    uid = q.get("uid_deleted", "")
    try:  # only well-formed values are echoed back
        if tag:
            validate_tag(tag)
        if uid:
            validate_uid(uid)
    except InvalidInput:
        return None
    return template.format(tag=tag, uid=uid[:12])


# ----------------------------------------------------------------- browse


async def projects(request: Request) -> Response:
    items = await ui_of(request).run(data.projects)
    return page(
        request,
        "projects.html",
        {"items": items, "projects": [p["name"] for p in items], "title": "Projects"},
    )


async def switch(request: Request) -> Response:
    project = validate_project(request.query_params.get("project", ""))
    return RedirectResponse(f"/projects/{quote(project)}/artifacts", status_code=303)


async def project_home(request: Request) -> Response:
    return RedirectResponse(f"/projects/{quote(_project(request))}/artifacts", status_code=303)


def _listing(cat: Catalog, project: str, search: data.Search) -> tuple[list[str], data.Listing]:
    return data.project_names(cat), data.list_artifacts(cat, project, search)


async def artifacts(request: Request) -> Response:
    project = _project(request)
    search = data.Search.from_params(request.query_params)
    names, listing = await ui_of(request).run(_listing, project, search)
    return page(
        request,
        "artifacts.html",
        {
            "project": project,
            "projects": names,
            "search": search,
            "listing": listing,
            "message": _message(request),
            "title": f"{project} · {data.TABS[search.tab][0]}",
        },
    )


async def _render_artifact(
    request: Request,
    project: str,
    key: str,
    version: dict[str, Any],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    view = await ui_of(request).run(data.artifact, project, key, **version)
    art: Artifact = view["artifact"]
    up, down = render.lineage_lists(view["lineage"])
    graph = render.lineage_graph(
        view["lineage"], {"uid": art.uid, "key": art.key, "kind": art.kind}
    )
    return page(
        request,
        "artifact.html",
        {
            **view,
            "project": project,
            "art": art,
            "spec": art.kind_spec,
            "graph": graph,
            "upstream": up,
            "downstream": down,
            "links": [
                (name, uri, data.link_target(uri)) for name, uri in sorted(art.extra_data.items())
            ],
            "labels_text": "\n".join(f"{k}={v}" for k, v in sorted(art.labels.items())),
            "message": _message(request),
            "error": error,
            "title": f"{art.key} · {project}",
        },
        status=status,
    )


async def artifact(request: Request) -> Response:
    project = _project(request)
    key = request.path_params["key"]
    return await _render_artifact(request, project, key, version_params(request))


async def runs(request: Request) -> Response:
    project = _project(request)
    page_no = data.PAGE.read(request.query_params)

    def load(cat: Catalog) -> tuple[list[str], dict[str, Any]]:
        return data.project_names(cat), data.runs(cat, project, page_no, 50)

    names, result = await ui_of(request).run(load)
    return page(
        request,
        "runs.html",
        {"project": project, "projects": names, "result": result, "title": f"{project} · runs"},
    )


async def run(request: Request) -> Response:
    project = _project(request)
    uid = request.path_params["uid"]
    tab = request.query_params.get("tab", "overview")
    if tab not in ("overview", "artifacts"):
        raise InvalidInput(f"unknown tab {tab!r}; one of overview, artifacts")

    def load(cat: Catalog) -> tuple[list[str], dict[str, Any]]:
        return data.project_names(cat), data.run(cat, project, uid)

    names, view = await ui_of(request).run(load)
    return page(
        request,
        "run.html",
        {
            **view,
            "project": project,
            "projects": names,
            "tab": tab,
            "title": f"run {view['run']['name']} · {project}",
        },
    )


# ---------------------------------------------------------------- content


def _filename(art: Artifact, suffix: str | None = None) -> str:
    name = art.spec.filename or (f"{art.key}.{art.spec.format}" if art.spec.format else art.key)
    return f"{name}{suffix}" if suffix else str(name)


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that hands over what was written (zipfile then
    writes a streaming zip: data descriptors after each member)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def _zip_chunks(cas: ObjectStore, digest: str, done: Callable[[], None]) -> Iterator[bytes]:
    """A directory artifact as a zip, streamed: each file read from the store, verified
    (a mismatch cuts the response short), in constant memory; ``done()`` at the end."""
    try:
        manifest = cas.read_manifest(digest)
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in manifest.entries:
                name = validate_relative_path(entry.path)
                with (
                    cas.open(entry.digest) as src,
                    archive.open(name, "w", force_zip64=True) as out,
                ):
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        if data := sink.take():
                            yield data
                yield sink.take()
        yield sink.take()
    finally:
        done()


def _read(item: DataItem) -> bytes:
    content = item.get()
    return content if isinstance(content, bytes) else content.encode()


def _chunks(item: DataItem) -> Iterator[bytes]:
    with item.open("rb") as fh:  # verifying reader: raises at EOF on a mismatch
        while chunk := fh.read(CHUNK):
            yield chunk


async def content(request: Request) -> Response:
    """The version's bytes, verified against its hash; inline only for safe types."""
    project = _project(request)
    key = request.path_params["key"]
    art, item = await ui_of(request).run(
        data.dataitem, project, key, request.query_params.get("uid") or None
    )
    return await send_content(request, art, item, pinned=bool(request.query_params.get("uid")))


async def send_content(request: Request, art: Artifact, item: DataItem, pinned: bool) -> Response:
    """A version's stored content, verified against its hash (``inline=1``: shown, not
    downloaded, for images and sandboxed HTML/SVG)."""
    inline = data.INLINE.read(request.query_params)
    etag = f'"{art.hash}"'
    headers = {"etag": etag, "x-content-sha256": str(art.hash)}
    if pinned:
        headers["cache-control"] = "private, max-age=31536000, immutable"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    fmt = str(art.spec.format or "").lower()
    if fmt == "dir":
        if not ZIP_SLOTS.acquire(blocking=False):
            raise Busy(
                f"{ZIP_STREAMS} directory downloads are running: try again in a moment "
                "(or use `catalog get`)"
            )
        released = threading.Event()

        def release() -> None:  # once: at the stream's end, or if it never starts
            if not released.is_set():
                released.set()
                ZIP_SLOTS.release()

        try:
            chunks = _zip_chunks(ui_of(request).catalog.store_of(art), str(art.hash), release)
        except BaseException:
            release()
            raise
        weakref.finalize(chunks, release)
        headers["content-disposition"] = _disposition("attachment", f"{art.key}.zip")
        return StreamingResponse(chunks, media_type="application/zip", headers=headers)
    media = MEDIA_TYPES.get(fmt, "application/octet-stream")
    if inline and fmt in IMAGES:
        headers["content-disposition"] = _disposition("inline", _filename(art))
    elif inline and fmt in ("html", "htm", "svg"):
        headers["content-disposition"] = _disposition("inline", _filename(art))
        headers["content-security-policy"] = SANDBOX
    else:
        headers["content-disposition"] = _disposition("attachment", _filename(art))
        if media.startswith("text/html") or fmt == "svg":
            media = "application/octet-stream"
    if (art.size or 0) <= BUFFER_LIMIT:
        body = await run_in_threadpool(_read, item)  # verified before anything is sent
        return Response(body, media_type=media, headers=headers)
    headers["content-length"] = str(art.size)
    return StreamingResponse(_chunks(item), media_type=media, headers=headers)


async def yaml_document(request: Request) -> Response:
    project = _project(request)
    key = request.path_params["key"]
    version = version_params(request)
    art = await ui_of(request).run(data.get_version, project, key, **version)
    return send_yaml(art)


def send_yaml(art: Artifact) -> Response:
    """A version's document as YAML, as a download."""
    name = f"{art.key}-{render.short(art.uid, 12)}.yaml"
    return Response(
        art.to_yaml(),
        media_type="application/yaml; charset=utf-8",
        headers={"content-disposition": _disposition("attachment", name)},
    )


async def attachment(request: Request) -> Response:
    project = _project(request)
    key = request.path_params["key"]
    name = request.path_params["name"]
    body = await ui_of(request).run(
        data.attachment, project, key, request.query_params.get("uid") or None, name
    )
    media = MEDIA_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    return Response(
        body,
        media_type=media,
        headers={"content-security-policy": SANDBOX, "content-disposition": "inline"},
    )


# ----------------------------------------------------------------- manage


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    ui_of(request).guard.check_write(request, fields.get(CSRF_FIELD, ""))
    return fields


def _back(project: str, key: str, uid: str, **params: str) -> RedirectResponse:
    url = render.artifact_href(project, key, uid)
    extra = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    return RedirectResponse(url + ("&" if "?" in url else "?") + extra, status_code=303)


async def _manage(request: Request, action: str) -> Response:
    project = _project(request)
    key = request.path_params["key"]
    fields = await _form(request)
    uid = fields.get("uid", "")
    ui = ui_of(request)
    try:
        if action == "tag":
            tag = fields.get("tag", "").strip()
            await ui.run(data.add_tag, project, key, uid, tag)
            return _back(project, key, uid, done="tagged", tag=tag)
        if action == "untag":
            tag = fields.get("tag", "").strip()
            await ui.run(data.remove_tag, project, key, uid, tag)
            return _back(project, key, uid, done="untagged", tag=tag)
        labels = data.parse_labels_text(fields.get("labels", ""))
        await ui.run(data.set_labels, project, key, uid, labels)
        return _back(project, key, uid, done="labels")
    except CatalogError as exc:
        if exc.status != 400 or not uid:
            raise
        return await _render_artifact(
            request, project, key, {"uid": uid}, error=str(exc), status=400
        )


async def tag(request: Request) -> Response:
    return await _manage(request, "tag")


async def untag(request: Request) -> Response:
    return await _manage(request, "untag")


async def labels(request: Request) -> Response:
    return await _manage(request, "labels")


async def delete(request: Request) -> Response:
    """GET: the confirmation page; POST: delete the version, then show what is left."""
    project = _project(request)
    key = request.path_params["key"]
    ui = ui_of(request)
    if request.method == "GET":
        uid = request.query_params.get("uid", "")

        def load(cat: Catalog) -> tuple[list[str], Artifact]:
            return data.project_names(cat), data.get_version(cat, project, key, uid=uid)

        names, art = await ui.run(load)
        return page(
            request,
            "delete.html",
            {"project": project, "projects": names, "art": art, "title": f"Delete {art.key}?"},
        )
    fields = await _form(request)
    uid = fields.get("uid", "")
    if fields.get("confirm") != "yes":
        raise InvalidInput("deleting needs confirmation (confirm=yes)")
    deleted = await ui.run(data.delete_version, project, key, uid, fields.get("reason"))

    def latest(cat: Catalog) -> Artifact | None:
        try:
            return data.get_version(cat, project, key)
        except ArtifactNotFound:
            return None

    left = await ui.run(latest)
    params = f"done=deleted&uid_deleted={quote(deleted[0])}"
    if left is None:
        return RedirectResponse(
            f"/projects/{quote(project)}/artifacts?tab=all&{params}", status_code=303
        )
    return RedirectResponse(render.artifact_href(project, key) + "?" + params, status_code=303)


# ------------------------------------------------------------------ login


async def login(request: Request) -> Response:
    ui = ui_of(request)
    target = request.query_params.get("next", "/")
    if not re.fullmatch(r"/([^/\\][^\\]*)?", target):  # no //host or /\host
        target = "/"
    if request.method == "GET":
        return page(request, "login.html", {"next": target, "title": "Log in"})
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    ui.guard.check_csrf(request, fields.get(CSRF_FIELD, ""))
    grant = ui.guard.grant_of(fields.get("token", ""))
    if grant is None:
        return page(
            request,
            "login.html",
            {"next": target, "error": "That is not the server's token.", "title": "Log in"},
            status=401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(AUTH_COOKIE, ui.guard.auth_cookie(grant), httponly=True, samesite="strict")
    return response


def routes() -> list[BaseRoute]:
    p = "/projects/{project}"
    a = p + "/artifacts/{key}"
    return [
        Route("/", projects),
        Route("/switch", switch),
        Route("/login", login, methods=["GET", "POST"]),
        Route(p, project_home),
        Route(p + "/artifacts", artifacts),
        Route(p + "/runs", runs),
        Route(p + "/runs/{uid}", run),
        Route(a, artifact),
        Route(a + "/content", content),
        Route(a + "/yaml", yaml_document),
        Route(a + "/attachments/{name}", attachment),
        Route(a + "/tag", tag, methods=["POST"]),
        Route(a + "/untag", untag, methods=["POST"]),
        Route(a + "/labels", labels, methods=["POST"]),
        Route(a + "/delete", delete, methods=["GET", "POST"]),
    ]
