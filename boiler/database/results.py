"""Live query results: the ordered result set of a query and the changes
between its versions, computed in-process (pure, no I/O, any backend).

The embedded store maintains one :class:`ResultSet` per query listener; the
runtime can do the same with documents received from a collection listener.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from .base import DocumentChange, DocumentSnapshot
from .evaluate import match_key, order_key
from .query import Query


def _same_version(a: DocumentSnapshot, b: DocumentSnapshot) -> bool:
    if a.update_time is not None and b.update_time is not None:
        return a.update_time == b.update_time
    return a.data == b.data


class ResultSet:
    """The current, ordered result of a live query, and the changes between versions.

    Change indexes follow Firestore: removals first (old indexes), then
    additions, then modifications, each applied one after another.
    """

    def __init__(self, query: Query) -> None:
        self.query = query
        self._keys: list[tuple[Any, ...]] = []
        self._docs: list[DocumentSnapshot] = []
        self._key_of: dict[str, tuple[Any, ...]] = {}

    @property
    def docs(self) -> list[DocumentSnapshot]:
        return list(self._docs)

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, path: str) -> DocumentSnapshot | None:
        """The held snapshot of ``path``, if it is in the result set."""
        key = self._key_of.get(path)
        return None if key is None else self._docs[bisect.bisect_left(self._keys, key)]

    def replace(self, docs: Sequence[DocumentSnapshot]) -> list[DocumentChange]:
        """Make ``docs`` (already in query order) the result; return the changes."""
        new_paths = {d.path: d for d in docs}
        removed = [p for p in self._key_of if p not in new_paths]
        added: list[tuple[tuple[Any, ...], DocumentSnapshot]] = []
        modified: list[tuple[tuple[Any, ...], DocumentSnapshot]] = []
        for doc in docs:
            key = order_key(self.query, doc)
            if key is None:
                continue
            held = self.get(doc.path)
            if held is None:
                added.append((key, doc))
            elif not _same_version(held, doc):
                modified.append((key, doc))
        return self._apply(removed, added, modified)

    def update(self, changed: Iterable[DocumentSnapshot]) -> list[DocumentChange] | None:
        """Apply changed documents (missing ones = deleted); return the changes.

        For a limited query whose window was full, a document leaving it may
        need one from outside the window: then nothing is applied and None is
        returned; call :meth:`replace` with a full run of the query.
        """
        query = self.query
        limit = query.limit_count
        full = limit is not None and len(self._docs) >= limit
        bound = None if not full or not self._keys else self._keys[0 if query.from_last else -1]
        removed: list[str] = []
        added: list[tuple[tuple[Any, ...], DocumentSnapshot]] = []
        modified: list[tuple[tuple[Any, ...], DocumentSnapshot]] = []
        for snap in changed:
            key = match_key(query, snap)
            if key is not None and bound is not None:
                inside = key > bound if query.from_last else key < bound
                if not inside:
                    key = None
            held = self.get(snap.path)
            if key is None:
                if held is not None:
                    if full:
                        return None
                    removed.append(snap.path)
            elif held is None:
                added.append((key, snap))
            elif not _same_version(held, snap):
                modified.append((key, snap))
        if limit is not None and len(self._docs) - len(removed) + len(added) > limit:
            window = {p: k for p, k in self._key_of.items() if p not in removed}
            window.update((d.path, k) for k, d in added)
            window.update((d.path, k) for k, d in modified)
            ordered = sorted(window, key=window.__getitem__)
            drop = set(ordered[:-limit] if query.from_last else ordered[limit:])
            removed += [p for p in drop if p in self._key_of]
            added = [pair for pair in added if pair[1].path not in drop]
            modified = [pair for pair in modified if pair[1].path not in drop]
        return self._apply(removed, added, modified)

    def _remove(self, path: str) -> int:
        key = self._key_of.pop(path)
        index = bisect.bisect_left(self._keys, key)
        del self._keys[index]
        del self._docs[index]
        return index

    def _insert(self, key: tuple[Any, ...], doc: DocumentSnapshot) -> int:
        index = bisect.bisect_left(self._keys, key)
        self._keys.insert(index, key)
        self._docs.insert(index, doc)
        self._key_of[doc.path] = key
        return index

    def _apply(
        self,
        removed: list[str],
        added: list[tuple[tuple[Any, ...], DocumentSnapshot]],
        modified: list[tuple[tuple[Any, ...], DocumentSnapshot]],
    ) -> list[DocumentChange]:
        changes: list[DocumentChange] = []
        for path in sorted(removed, key=self._key_of.__getitem__):
            doc = self._docs[bisect.bisect_left(self._keys, self._key_of[path])]
            changes.append(DocumentChange("removed", doc, self._remove(path), -1))
        added.sort(key=lambda pair: pair[0])
        for key, doc in added:
            changes.append(DocumentChange("added", doc, -1, self._insert(key, doc)))
        modified.sort(key=lambda pair: pair[0])
        for key, doc in modified:
            old_index = self._remove(doc.path)
            changes.append(DocumentChange("modified", doc, old_index, self._insert(key, doc)))
        return changes


__all__ = ["ResultSet"]
