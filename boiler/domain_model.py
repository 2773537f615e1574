"""Domain models: documents in a collection, with CRUD and queries.

::

    class User(DomainModel):
        class Meta:
            collection_name = "users"
        first_name = attrs.bproperty()

    User.new(doc_id="u1", first_name="A").save()
    User.get(doc_id="u1")                     # NotFound naming the path if missing
    User.where(User.first_name == "A").fetch()

Stored documents hold each exported attribute under its data key (camelCase)
plus ``obj_type`` (the class name), ``doc_id`` and ``doc_ref`` (the path).
Subclasses without their own ``Meta.collection_name`` share the parent's
collection; ``obj_type`` picks the class when loading, and a document without
``obj_type`` (written by another program) loads as the class asked. Keys of a
document that no attribute declares are kept and written back on save.

Models do I/O only in the CRUD methods, through ``db=``, ``transaction=``,
``batch=`` or else the context database (``Context.db``).
"""

from __future__ import annotations

import secrets
import string
from typing import Any, ClassVar, TypeVar

from . import registry
from .attrs import Field, declared_fields
from .database import Database, DocumentSnapshot, Query, Transaction, WriteBatch, paths
from .exceptions import ConfigurationError, InvalidPath, NotFound, ValidationError
from .model_query import META_KEYS, ModelQuery

M = TypeVar("M", bound="PrimaryObject")

_ID_ALPHABET = string.ascii_letters + string.digits


def random_id() -> str:
    """A 20-character random document id (like Firestore's auto ids)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


class PrimaryObject:
    """A model stored as its own document (the seed's base class).

    ``Cls(doc_id=None, doc_ref=None, **values)`` builds an object without I/O;
    :meth:`new` and :meth:`create` are the seed spellings.
    """

    _fields: ClassVar[dict[str, Field]] = {}
    _collection_name: ClassVar[str | None] = None
    _collection_root: ClassVar[type | None] = None
    _abstract: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._abstract = bool(getattr(cls.__dict__.get("Meta"), "abstract", False))
        cls._fields = declared_fields(cls)
        _check_keys(cls)
        meta = cls.__dict__.get("Meta")
        name = getattr(meta, "collection_name", None) if meta is not None else None
        if name:
            try:
                paths.collection_path(name)
            except InvalidPath as e:
                raise ConfigurationError(f"{cls.__name__}.Meta.collection_name: {e}") from e
            cls._collection_name, cls._collection_root = name, cls
        elif cls._collection_root is None and not cls._abstract:
            cls._collection_name, cls._collection_root = cls.__name__, cls
        registry.register(cls)

    def __init__(self, doc_id: str | None = None, doc_ref: str | None = None, **values: Any):
        self._extra: dict[str, Any] = {}
        self._doc_ref = self._make_ref(doc_id, doc_ref)
        for descriptor in self._fields.values():
            descriptor.initialize(self)
        for key, value in values.items():
            if key not in self._fields:
                raise ValidationError(f"{type(self).__name__} has no attribute {key!r}", field=key)
            setattr(self, key, value)

    # -- identity -------------------------------------------------------------
    @classmethod
    def collection_path(cls) -> str:
        """The collection holding this class's documents."""
        if cls._collection_name is None:
            raise ConfigurationError(
                f"{cls.__name__} is abstract: declare Meta.collection_name on a subclass"
            )
        return cls._collection_name

    @classmethod
    def _make_ref(cls, doc_id: str | None, doc_ref: str | None) -> str:
        if doc_ref is not None:
            path = paths.document_path(doc_ref)
            if doc_id is not None and paths.doc_id(path) != doc_id:
                raise InvalidPath(f"doc_id {doc_id!r} does not match doc_ref {doc_ref!r}")
            return path
        if doc_id is None:
            doc_id = random_id()
        if not isinstance(doc_id, str) or "/" in doc_id:
            raise InvalidPath(f"invalid doc_id {doc_id!r}: a non-empty string without '/'")
        return paths.document_path(f"{cls.collection_path()}/{doc_id}")

    @property
    def doc_ref(self) -> str:
        """The document path (``"users/u1"``)."""
        return self._doc_ref

    @property
    def doc_id(self) -> str:
        return self._doc_ref.rsplit("/", 1)[1]

    # -- construction (no I/O) ------------------------------------------------
    @classmethod
    def new(cls: type[M], doc_id: str | None = None, **values: Any) -> M:
        """A new unsaved object (random id if none given)."""
        return cls(doc_id=doc_id, **values)

    @classmethod
    def create(cls: type[M], doc_id: str | None = None, **values: Any) -> M:
        """Seed spelling of :meth:`new` (does not save)."""
        return cls(doc_id=doc_id, **values)

    # -- stored form ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored form: data keys, unknown keys kept from loading, ``obj_type``,
        ``doc_id`` and ``doc_ref``."""
        data = dict(self._extra)
        for descriptor in self._fields.values():
            if descriptor.export_enabled:
                data[descriptor.data_key] = descriptor.dump(self)
        data["obj_type"] = type(self).__name__
        data["doc_id"] = self.doc_id
        data["doc_ref"] = self.doc_ref
        return data

    @classmethod
    def from_dict(
        cls: type[M], data: dict[str, Any], doc_id: str | None = None, doc_ref: str | None = None
    ) -> M:
        """An object from its stored form; ``obj_type`` picks the (sub)class."""
        if not isinstance(data, dict):
            raise ValidationError(
                f"{cls.__name__}.from_dict() needs a dict, got {type(data).__name__}"
            )
        target = cls._class_for(data.get("obj_type"), doc_ref or data.get("doc_ref"))
        if doc_ref is None and doc_id is None:
            stored_ref, stored_id = data.get("doc_ref"), data.get("doc_id")
            if isinstance(stored_ref, str):
                doc_ref = stored_ref
            elif isinstance(stored_id, str):
                doc_id = stored_id
        obj = target.__new__(target)
        obj._extra = {}
        obj._doc_ref = target._make_ref(doc_id, doc_ref)
        for descriptor in target._fields.values():
            descriptor.initialize(obj)
        by_key = {d.data_key: d for d in target._fields.values()}
        for key, raw in data.items():
            if key in META_KEYS:
                continue
            found = by_key.get(key)
            if found is None:
                obj._extra[key] = raw
                continue
            descriptor = found
            if descriptor.import_enabled:
                try:
                    descriptor.load(obj, raw)
                except ValidationError as e:
                    raise ValidationError(
                        f"{obj.doc_ref}: {target.__name__}.{e}", field=descriptor.name
                    ) from e
        return obj

    @classmethod
    def from_snapshot(cls: type[M], snapshot: DocumentSnapshot) -> M:
        """An object from a database snapshot (:class:`NotFound` if it does not exist)."""
        data = snapshot.to_dict()
        if data is None:
            raise NotFound(
                f"{cls.__name__} document {snapshot.path!r} not found", path=snapshot.path
            )
        return cls.from_dict(data, doc_ref=snapshot.path)

    @classmethod
    def _class_for(cls: type[M], obj_type: Any, where: Any) -> type[M]:
        if not isinstance(obj_type, str) or obj_type == cls.__name__:
            return cls._concrete()
        found = [c for c in _descendants(cls) if c.__name__ == obj_type]
        if len({(c.__module__, c.__qualname__) for c in found}) == 1:
            return found[-1]  # one declaration (re)defined: the latest wins
        if len(found) > 1:
            raise ConfigurationError(
                f"obj_type {obj_type!r} of {where!r} matches several subclasses of {cls.__name__}"
            )
        if registry.candidates(obj_type):
            raise ValidationError(
                f"document {where!r} holds a {obj_type}, which is not a {cls.__name__}"
            )
        return cls._concrete()  # written by a program we don't know: load as asked

    @classmethod
    def _concrete(cls: type[M]) -> type[M]:
        if cls._abstract:
            raise ConfigurationError(f"{cls.__name__} is abstract; load with a concrete class")
        return cls

    # -- CRUD -----------------------------------------------------------------
    @classmethod
    def get(
        cls: type[M],
        doc_id: str | None = None,
        doc_ref: str | None = None,
        *,
        transaction: Transaction | None = None,
        db: Database | None = None,
    ) -> M:
        """Read one object by id or path; :class:`NotFound` naming the path if missing."""
        if doc_id is None and doc_ref is None:
            raise InvalidPath(f"{cls.__name__}.get() needs doc_id= or doc_ref=")
        path = cls._make_ref(doc_id, doc_ref)
        reader: Transaction | Database = transaction if transaction is not None else _db(db)
        return cls.from_snapshot(reader.get(path))

    def save(
        self,
        transaction: Transaction | None = None,
        batch: WriteBatch | None = None,
        *,
        db: Database | None = None,
    ) -> None:
        """Write the whole document (create or overwrite)."""
        data = self.to_dict()
        if transaction is not None:
            transaction.set(self.doc_ref, data)
        elif batch is not None:
            batch.set(self.doc_ref, data)
        else:
            _db(db).set(self.doc_ref, data)

    def delete(
        self,
        transaction: Transaction | None = None,
        batch: WriteBatch | None = None,
        *,
        db: Database | None = None,
    ) -> None:
        """Delete the document (no error if it is already gone)."""
        if transaction is not None:
            transaction.delete(self.doc_ref)
        elif batch is not None:
            batch.delete(self.doc_ref)
        else:
            _db(db).delete(self.doc_ref)

    # -- queries --------------------------------------------------------------
    @classmethod
    def query(cls: type[M]) -> ModelQuery[M]:
        """Every object of this class (subclass objects included)."""
        query = Query(cls.collection_path())
        root = cls._collection_root
        if root is not None and root is not cls:
            names = sorted({c.__name__ for c in (cls, *_descendants(cls))})
            query = (
                query.where("obj_type", "==", names[0])
                if len(names) == 1
                else query.where("obj_type", "in", names)
            )
        return ModelQuery(cls, query)

    @classmethod
    def all(cls: type[M]) -> ModelQuery[M]:
        """Every object of this class (lazy; iterate or ``.fetch()``)."""
        return cls.query()

    @classmethod
    def where(cls: type[M], *args: Any, **equals: Any) -> ModelQuery[M]:
        """Filtered objects; see :mod:`boiler.model_query` for the forms accepted."""
        return cls.query().where(*args, **equals)

    # -- value semantics ------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, PrimaryObject)
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={d.__get__(self, type(self))!r}"
            for name, d in self._fields.items()
            if d.is_set(self) and d.fget is None
        )
        return f"{type(self).__name__}({self.doc_ref!r}{', ' if shown else ''}{shown})"


def _descendants(cls: type) -> list[type]:
    out: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_descendants(sub))
    return out


def _check_keys(cls: type) -> None:
    fields: dict[str, Field] = cls._fields  # type: ignore[attr-defined]
    seen: dict[str, str] = {}
    for name, descriptor in fields.items():
        if name in ("doc_id", "doc_ref"):
            raise ConfigurationError(f"{cls.__name__}.{name}: this attribute name is reserved")
        key = descriptor.data_key
        if key in META_KEYS:
            raise ConfigurationError(f"{cls.__name__}.{name}: stored key {key!r} is reserved")
        if key in seen:
            raise ConfigurationError(
                f"{cls.__name__}: attributes {seen[key]!r} and {name!r} share stored key {key!r}"
            )
        seen[key] = name


def _db(db: Database | None) -> Database:
    if db is not None:
        return db
    from .context import Context

    return Context.db


class DomainModel(PrimaryObject):
    """Class-based domain model: declare ``Meta.collection_name`` and attributes."""

    class Meta:
        abstract = True


def run_transaction(*args: Any, **kwargs: Any) -> Any:
    """:func:`boiler.context.run_transaction` (re-exported for the seed's imports)."""
    from .context import run_transaction as _run

    return _run(*args, **kwargs)


__all__ = ["DomainModel", "PrimaryObject", "random_id", "run_transaction"]
