"""DataItem: one handle on data, whether a catalog artifact, an fsspec URL or a path.

Mirrors MLRun's ``mlrun.datastore.DataItem``: ``get()``, ``local()``,
``as_df()``, ``download()``, ``open()``, ``listdir()``, ``stat()``, ``show()``
and ``meta`` (the artifact, or None for plain URLs). Reads of catalog
artifacts go through the content-addressed store and are verified against
the version's hash; a mismatch raises, it never returns wrong bytes.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog import store
from catalog.artifacts.base import Artifact, Client
from catalog.errors import InvalidInput, ObjectNotFound, WrongType
from catalog.uri import is_store_uri

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_READERS = {
    "csv": "read_csv",
    "parquet": "read_parquet",
    "pq": "read_parquet",
    "json": "read_json",
    "feather": "read_feather",
    "tsv": "read_csv",
}


@dataclass(frozen=True)
class Stat:
    size: int | None
    hash: str | None
    url: str


def cache_dir() -> Path:
    from catalog.config import data_dir

    return data_dir() / "cache"


class DataItem:
    """A handle on data: read it, download it, or load it as a DataFrame."""

    def __init__(
        self, url: str, artifact: Artifact | None = None, catalog: Client | None = None
    ) -> None:
        self._url = url
        self._artifact = artifact
        self._catalog = catalog
        self._local: str | None = None

    @classmethod
    def of(cls, source: str | Artifact | os.PathLike[str], catalog: Client) -> DataItem:
        """A DataItem for an artifact, a store URI (resolved now), a URL or a path."""
        if isinstance(source, Artifact):
            return cls(source.uri, source, catalog)
        text = os.fspath(source)
        if is_store_uri(text):
            art = catalog.get_artifact(text)
            return cls(text, art, catalog)
        return cls(store.normalize_url(text), None, catalog)

    # ------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return self._url

    @property
    def catalog(self) -> Client | None:
        """The client this item reads through."""
        return self._catalog

    @property
    def meta(self) -> Artifact | None:
        """The artifact version behind this item (None for plain URLs)."""
        return self._artifact

    @property
    def artifact_url(self) -> str:
        return self._artifact.uri if self._artifact else self._url

    @property
    def key(self) -> str:
        if self._artifact is not None:
            return self._artifact.key
        return self._url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def kind(self) -> str:
        """``artifact``/``dataset``/... for catalog items, else the URL scheme (``file``)."""
        if self._artifact is not None:
            return self._artifact.kind
        return self._url.split("://", 1)[0] if "://" in self._url else "file"

    @property
    def suffix(self) -> str:
        """The file suffix (``.csv``) from the artifact's file name, format or the URL."""
        url = self._url
        if self._artifact is not None:
            name = self._artifact.spec.filename
            extension = str(name).rsplit(".", 1)[1] if name and "." in name else ""
            if extension.isalnum() and len(extension) <= 16:  # never a path: cache names
                return "." + extension
            fmt = self._artifact.spec.format
            if fmt:
                return f".{fmt}" if fmt != "dir" else ""
            if self._is_blob() or not self._artifact.target_path:
                return ""
            url = self._artifact.target_path  # bytes recorded where they are (upload=False)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return "." + name.rsplit(".", 1)[1] if "." in name else ""

    def __repr__(self) -> str:
        return f"<DataItem {self.artifact_url}>"

    def __str__(self) -> str:
        return self.artifact_url

    # ------------------------------------------------------------------ read

    def _store(self) -> store.ObjectStore:
        assert self._artifact is not None and self._catalog is not None
        return self._catalog.store_of(self._artifact)

    def _is_blob(self) -> bool:
        art = self._artifact
        return bool(art is not None and art.hash and store.root_of(art.target_path) is not None)

    def _is_dir(self) -> bool:
        return self._artifact is not None and self._artifact.spec.format == "dir"

    def open(self, mode: str = "rb") -> Any:
        """A file object; for artifacts a verifying reader (raises at EOF on mismatch)."""
        if mode not in ("rb", "r"):
            raise InvalidInput(f"DataItem.open is read-only; mode {mode!r} is not supported")
        if self._is_blob():
            assert self._artifact is not None and self._artifact.hash
            raw = self._store().open(self._artifact.hash)
            return raw if mode == "rb" else io.TextIOWrapper(raw, encoding="utf-8")
        if self._artifact is not None and not self._artifact.target_path:
            raise InvalidInput(f"{self.artifact_url} has no content")
        url = self._artifact.target_path if self._artifact is not None else self._url
        assert url is not None
        return store.open_url(url, "rb") if mode == "rb" else store.open_url(url, "r")

    def get(
        self, size: int | None = None, offset: int = 0, encoding: str | None = None
    ) -> bytes | str:
        """The content (or ``size`` bytes from ``offset``); text if ``encoding`` is given."""
        if self._is_dir():
            raise InvalidInput(f"{self.artifact_url} is a directory; use listdir() or local()")
        if self._is_blob():
            assert self._artifact is not None and self._artifact.hash
            data = self._store().get_bytes(self._artifact.hash)  # verified
            data = data[offset : offset + size if size is not None else None]
        else:
            with self.open("rb") as fh:
                if offset:
                    fh.seek(offset)
                data = fh.read() if size is None else fh.read(size)
        return data.decode(encoding) if encoding else data

    def local(self) -> str:
        """A local path to the content (downloaded once into the cache, verified)."""
        if self._local is not None:
            return self._local
        if not self._is_blob() and self._artifact is None and store.is_local(self._url):
            self._local = self._url
            return self._local
        if self._is_blob():
            assert self._artifact is not None and self._artifact.hash
            digest = self._artifact.hash
            target = cache_dir() / digest[:2] / f"{digest}{self.suffix}"
            if target.is_file() and store.hash_file(str(target))[0] != digest:
                target.unlink()  # a cached copy that changed is never handed out
            if not target.exists():
                if self._is_dir():
                    tmp = Path(tempfile.mkdtemp(dir=cache_dir() if cache_dir().exists() else None))
                    self._store().download_dir(digest, tmp)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.replace(tmp, target)
                    except OSError:
                        shutil.rmtree(tmp, ignore_errors=True)
                else:
                    self._store().download(digest, target)
            self._local = str(target)
            return self._local
        name = self.key or "data"
        suffix = self.suffix
        if suffix and not name.endswith(suffix):
            name += suffix
        target = Path(tempfile.mkdtemp(prefix="catalog-")) / name
        url = self._artifact.target_path if self._artifact is not None else self._url
        if not url:
            raise InvalidInput(f"{self.artifact_url} has no content")
        store.get_to_local(url, str(target))
        self._local = str(target)
        return self._local

    def download(self, target_path: str | os.PathLike[str]) -> str:
        """Copy the content to ``target_path`` (a directory tree for dir artifacts)."""
        dest = Path(target_path)
        if self._is_blob():
            assert self._artifact is not None and self._artifact.hash
            if self._is_dir():
                self._store().download_dir(self._artifact.hash, dest)
            else:
                self._store().download(self._artifact.hash, dest)
            return str(dest)
        url = self._artifact.target_path if self._artifact is not None else self._url
        if not url:
            raise InvalidInput(f"{self.artifact_url} has no content")
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.get_to_local(url, str(dest))
        return str(dest)

    def listdir(self) -> list[str]:
        """Relative paths of a directory artifact's files (or the names under a directory URL)."""
        if self._is_dir():
            assert self._artifact is not None and self._artifact.hash
            return [e.path for e in self._store().read_manifest(self._artifact.hash).entries]
        url = self._artifact.target_path if self._artifact is not None else self._url
        if not url:
            raise InvalidInput(f"{self.artifact_url} has no content")
        # list_url gives the entries directly under url, as full URLs: keep their names
        return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in store.list_url(url)]

    def stat(self) -> Stat:
        if self._artifact is not None:
            return Stat(self._artifact.size, self._artifact.hash, self.artifact_url)
        if not store.url_exists(self._url):
            raise ObjectNotFound(self._url)
        return Stat(store.url_size(self._url), None, self._url)

    def as_df(
        self, columns: list[str] | None = None, format: str | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """The content as a pandas DataFrame (csv, parquet, json, feather)."""
        import pandas as pd

        fmt = (
            format
            or (self._artifact.spec.format if self._artifact else None)
            or self.suffix.lstrip(".")
        ).lower()
        reader_name = _READERS.get(fmt)
        if reader_name is None:
            raise InvalidInput(
                f"cannot read {self.artifact_url} as a DataFrame: unknown format {fmt!r} "
                f"(one of {', '.join(sorted(_READERS))}; pass format=)"
            )
        if fmt == "tsv":
            kwargs.setdefault("sep", "\t")
        select_after = columns is not None and reader_name == "read_json"  # no such argument
        if columns is not None and not select_after:
            kwargs.setdefault("usecols" if reader_name == "read_csv" else "columns", columns)
        if fmt == "json" and "lines" not in kwargs:
            kwargs["orient"] = kwargs.get("orient", "records")
        reader = getattr(pd, reader_name)
        with self.open("rb") as fh:
            data = fh.read()  # verified at EOF by the store's reader
        frame: pd.DataFrame = reader(io.BytesIO(data), **kwargs)
        if select_after:
            assert columns is not None
            frame = frame[list(columns)]
        return frame

    # ----------------------------------------------------------------- write

    def _writable_url(self, what: str) -> str:
        """The plain URL this item may write to; a catalog version is immutable."""
        if self._artifact is not None:
            raise InvalidInput(
                f"cannot {what} {self.artifact_url}: a catalog version is immutable (read-only); "
                "log a new version instead (log_artifact / log_dataset)"
            )
        return self._url

    def put(self, data: bytes | str, append: bool = False) -> None:
        """Write ``data`` (bytes, or text as UTF-8) to this URL, replacing what is there;
        ``append=True`` adds it at the end. Plain URLs only (not catalog versions)."""
        url = self._writable_url("put to")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise WrongType("DataItem.put", data, "bytes or text")
        if append and store.url_exists(url):
            with store.open_url(url, "rb") as fh:
                data = fh.read() + bytes(data)
        store.put_bytes_atomic(url, bytes(data))
        self._local = None

    def upload(self, src_path: str | os.PathLike[str]) -> None:
        """Copy the local file ``src_path`` to this URL. Plain URLs only."""
        url = self._writable_url("upload to")
        source = os.fspath(src_path)
        if not os.path.isfile(source):
            raise InvalidInput(f"upload: {source!r} is not a file")
        store.put_local_file(source, url)
        self._local = None

    def delete(self) -> None:
        """Remove the object at this URL (nothing if it is gone). Plain URLs only:
        a catalog version is deleted with ``Catalog.delete_artifact`` (an event)."""
        url = self._writable_url("delete")
        store.remove_url(url)
        self._local = None

    def show(self, format: str | None = None) -> Any:
        """Display the content: HTML/image in Jupyter, text otherwise."""
        suffix = (format or self.suffix.lstrip(".")).lower()
        try:
            from IPython.display import HTML, Image, display
        except ImportError:
            if suffix in _READERS:
                print(self.as_df())
            else:
                content = self.get()
                print(content.decode("utf-8", "replace") if isinstance(content, bytes) else content)
            return None
        if suffix in ("png", "jpg", "jpeg", "gif"):
            return display(Image(self.get()))
        if suffix in ("html", "htm"):
            return display(HTML(self.get(encoding="utf-8")))
        if suffix in _READERS:
            return display(self.as_df())
        return print(self.get(encoding="utf-8"))


def set_in_memory_item(key: str, value: bytes | str) -> DataItem:
    """Put ``value`` at ``memory://<key>`` (fsspec's in-process memory filesystem) and
    return its DataItem: MLRun's ``mlrun.datastore.set_in_memory_item``, for inputs
    and parameter files made in the same process (``with_param_file("memory://k")``)."""
    if not isinstance(key, str) or not key.strip("/"):
        raise InvalidInput(f"set_in_memory_item needs a key (a name), not {key!r}")
    item = DataItem(f"memory://{key}")
    item.put(value)
    return item
