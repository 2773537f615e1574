"""Document and collection paths: ``users/u1`` is a document, ``users`` and
``users/u1/MeetingSession`` are collections. Segments alternate collection id /
document id, as in Firestore."""

from __future__ import annotations

from functools import lru_cache

from ..exceptions import InvalidPath


def split(path: str) -> list[str]:
    """Split ``path`` into segments, rejecting empty segments and non-strings."""
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, got {type(path).__name__}: {path!r}")
    return list(_split(path))


@lru_cache(maxsize=65536)
def _split(path: str) -> tuple[str, ...]:
    """Validated segments of ``path`` (cached: paths repeat on every rebuild)."""
    if not path or path.startswith("/") or path.endswith("/"):
        raise InvalidPath(f"invalid path {path!r}: must be non-empty and not start or end with '/'")
    segments = path.split("/")
    for seg in segments:
        if not seg:
            raise InvalidPath(f"invalid path {path!r}: empty segment")
        if seg in (".", ".."):
            raise InvalidPath(f"invalid path {path!r}: segment {seg!r} is not allowed")
        if seg.startswith("__") and seg.endswith("__") and len(seg) > 4:
            raise InvalidPath(f"invalid path {path!r}: segment {seg!r} is reserved")
        try:
            size = len(seg.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidPath(
                f"invalid path {path!r}: not valid Unicode (a lone surrogate cannot be "
                "encoded as UTF-8)"
            ) from None
        if size > 1500:
            raise InvalidPath(f"invalid path {path!r}: segment longer than 1500 bytes")
    return tuple(segments)


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (false for lone surrogates, e.g. ``"\\ud800"``)."""
    if text.isascii():  # O(1)
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_utf8(what: str, text: str) -> str:
    """The problem with ``text`` (a ``what``: "string", "field name") that is not UTF-8."""
    return f"{what} {text!r} is not valid Unicode (a lone surrogate cannot be encoded as UTF-8)"


#: Document paths already checked (builds check the same few paths over and
#: over); cleared when it grows past ``_CHECKED_MAX``.
_checked_documents: set[str] = set()
_CHECKED_MAX = 100_000


def document_path(path: str) -> str:
    """Return ``path`` if it names a document (even number of segments), else raise."""
    if type(path) is str and path in _checked_documents:  # only ever holds valid paths
        return path
    if not isinstance(path, str):
        split(path)  # raises the type error
    segments = _split(path)
    if len(segments) % 2:
        raise InvalidPath(
            f"invalid document path {path!r}: a document path has an even number of "
            "segments (collection/document[/collection/document...])"
        )
    if len(_checked_documents) >= _CHECKED_MAX:
        _checked_documents.clear()
    _checked_documents.add(path)
    return path


def collection_path(path: str) -> str:
    """Return ``path`` if it names a collection (odd number of segments), else raise."""
    if not isinstance(path, str):
        split(path)  # raises the type error
    segments = _split(path)
    if len(segments) % 2 == 0:
        raise InvalidPath(
            f"invalid collection path {path!r}: a collection path has an odd number of segments"
        )
    return path


def parent(doc_path: str) -> str:
    """The collection path holding the document ``doc_path``."""
    return document_path(doc_path).rsplit("/", 1)[0]


def doc_id(doc_path: str) -> str:
    """The last segment (document id) of ``doc_path``."""
    return document_path(doc_path).rsplit("/", 1)[1]


def collection_id(coll_path: str) -> str:
    """The last segment (collection id) of ``coll_path``."""
    return collection_path(coll_path).rsplit("/", 1)[-1]


def join(*parts: str) -> str:
    """Join path parts with ``/``."""
    return "/".join(p.strip("/") for p in parts if p)
