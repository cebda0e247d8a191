"""Plots, charts and directories.

``PlotArtifact(key, body=figure)`` takes a matplotlib ``Figure`` (anything with
``savefig``), PNG bytes, or HTML text; a plotly figure (anything with
``to_html``) is stored as HTML. A PNG plot also gets a small HTML viewer page
(the image inline, the title as heading) stored as its own blob, named in the
spec (``viewer``), so a browser can show it without the catalog.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from catalog.artifacts.base import Artifact, Prepared
from catalog.errors import InvalidInput

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def viewer_page(title: str, png: bytes) -> bytes:
    data = base64.b64encode(png).decode("ascii")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h3>{html.escape(title)}</h3>"
        f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
        "</body></html>"
    ).encode()


class PlotArtifact(Artifact):
    """A figure: stored as PNG (with an HTML viewer) or as HTML."""

    kind = "plot"

    def __init__(
        self, key: str | None = None, body: Any = None, title: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(key, **kwargs)
        self.figure = body
        self.spec.title = title or key

    def prepare(self, workdir: Path) -> Prepared:
        body = self.figure
        title = str(self.spec.title or self.key)
        if body is None:
            raise InvalidInput(f"plot {self.key!r} has no body (a figure, PNG bytes or HTML)")
        if hasattr(body, "savefig"):
            buffer = io.BytesIO()
            body.savefig(buffer, format="png", bbox_inches="tight")
            body = buffer.getvalue()
        elif hasattr(body, "to_html") and not isinstance(body, str | bytes):
            body = body.to_html(include_plotlyjs="cdn", full_html=True)
        if isinstance(body, bytes) and body.startswith(PNG_MAGIC):
            return Prepared(
                body=body,
                format="png",
                filename=f"{self.key}.png",
                spec={"title": title},
                attachments={"viewer.html": viewer_page(title, body)},
            )
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"plot {self.key!r}: bytes that are not PNG nor text") from exc
        if isinstance(body, str):
            return Prepared(
                body=body.encode("utf-8"),
                format="html",
                filename=f"{self.key}.html",
                spec={"title": title},
            )
        raise InvalidInput(
            f"plot {self.key!r}: body must be a figure, PNG bytes or HTML, "
            f"not {type(body).__name__}"
        )


class ChartArtifact(PlotArtifact):
    """MLRun's chart: a plot (kept for compatibility of imports)."""

    kind = "chart"


class DirArtifact(Artifact):
    """A directory, stored as a manifest plus one blob per file."""

    kind = "dir"

    def prepare(self, workdir: Path) -> Prepared:
        if not self.local_path or not Path(self.local_path).is_dir():
            raise InvalidInput(f"dir artifact {self.key!r} needs local_path, a directory")
        prepared = super().prepare(workdir)
        prepared.format = "dir"
        return prepared


class PlotlyArtifact(PlotArtifact, register=False):
    """MLRun's plotly artifact: ``PlotlyArtifact(key, figure=fig)``, stored as HTML.

    A version of kind ``plot`` (format ``html``); reads give a PlotArtifact.
    """

    kind = "plot"

    def __init__(
        self,
        key: str | None = None,
        figure: Any = None,
        title: str | None = None,
        body: Any = None,
        **kwargs: Any,
    ) -> None:
        if figure is not None and body is not None:
            raise InvalidInput(f"plotly artifact {key!r}: give figure= or body=, not both")
        figure = figure if figure is not None else body
        if figure is not None and not (
            hasattr(figure, "to_html") or isinstance(figure, str | bytes)
        ):
            raise InvalidInput(
                f"plotly artifact {key!r}: figure must be a plotly figure (with to_html) "
                f"or HTML, not {type(figure).__name__}"
            )
        super().__init__(key, body=figure, title=title, **kwargs)
