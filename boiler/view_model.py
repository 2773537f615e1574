"""View models: declared attributes computed from domain documents.

A view model reads domain documents only through its :class:`~boiler.store.Store`
(``self.doc``, ``self.docs``, ``self.query``), so every document and query it
reads becomes a dependency of the live view::

    class CityView(ViewModel):
        name = attrs.bproperty(type=str)

        @name.getter
        def name(self):
            return self.doc(City, doc_id=self.params["city_id"]).city_name

    view = CityView.get(city_id="sf")                      # built once
    live = CityView.get(city_id="sf", once=False, f_notify=print)   # kept fresh

``to_view_dict()`` evaluates every exported attribute (camelCase keys). Setters
change the domain objects the view read; :meth:`ViewModel.save` writes the
changed ones (inside a transaction, for the write path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from . import access as _access
from .attrs import Field, declared_fields
from .database import Database, Query, Transaction, WriteBatch, paths
from .domain_model import PrimaryObject
from .exceptions import BoilerError, NotFound, ValidationError
from .model_query import ModelQuery
from .store import Store

if TYPE_CHECKING:
    from .runtime import Engine, LiveHandle

M = TypeVar("M", bound=PrimaryObject)
V = TypeVar("V", bound="ViewModel")

#: Keys every view carries in ``params`` are plain JSON-like values.
Params = Mapping[str, Any]


class _HasUid(Protocol):
    """A principal: what :meth:`ViewModel.authorize` reads from one."""

    @property
    def uid(self) -> str: ...

    @property
    def claims(self) -> Mapping[str, Any]: ...


class ViewModel:
    """Computed attributes over a :class:`Store` of domain snapshots.

    ``params`` are the view's arguments (e.g. ``meeting_id``, ``user_id``);
    they are part of the live view's identity.
    """

    _fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields = declared_fields(cls)
        _access.rule_of(cls)  # a malformed Meta.access fails at class creation

    def __init__(self, store: Store, **params: Any) -> None:
        self.store = store
        self.params: dict[str, Any] = dict(params)
        self._models: dict[str, PrimaryObject | None] = {}
        # snapshots behind _models: the "before" state for changed_models(),
        # serialized only on the write path (building a view never needs it)
        self._loaded: dict[str, Any] = {}
        for descriptor in self._fields.values():
            descriptor.initialize(self)

    # -- reading domain objects through the store -------------------------------------
    def doc(
        self,
        cls: type[M],
        ref: str | None = None,
        *,
        doc_id: str | None = None,
        required: bool = True,
    ) -> M:
        """The ``cls`` object at path ``ref`` (or ``doc_id`` in its collection).

        Read once per build (the same object on every call, so setters can
        change it). A missing document raises :class:`NotFound` — the view does
        not exist then — unless ``required=False`` (then ``None``).
        """
        path = _path_of(cls, ref, doc_id)
        if path not in self._models:
            self._remember(cls, self.store.get(path))
        obj = self._models[path]
        if obj is None and required:
            raise NotFound(f"{cls.__name__} document {path!r} not found", path=path)
        return obj  # type: ignore[return-value]

    def docs(self, cls: type[M], refs: Iterable[str], *, required: bool = True) -> list[M]:
        """Objects for several paths, read in one round trip; order kept.

        Missing documents raise :class:`NotFound` (``required=False``: skipped).
        """
        wanted = [paths.document_path(r) for r in refs]
        misses = [p for p in wanted if p not in self._models]
        if misses:
            for snap in self.store.get_all(misses):
                self._remember(cls, snap)
        out: list[M] = []
        for path in wanted:
            obj = self._models[path]
            if obj is None:
                if required:
                    raise NotFound(f"{cls.__name__} document {path!r} not found", path=path)
                continue
            out.append(obj)  # type: ignore[arg-type]
        return out

    def query(self, query: ModelQuery[M] | Query, cls: type[M] | None = None) -> list[M]:
        """Objects matching a model query (``User.where(...)``) or a raw Query."""
        if isinstance(query, ModelQuery):
            cls = cls or query.model
            raw = query.to_query()
        else:
            raw = query
            if cls is None:
                raise TypeError("query() with a raw Query needs cls=")
        out = []
        for snap in self.store.query(raw):
            if snap.path not in self._models:
                self._remember(cls, snap)
            obj = self._models[snap.path]
            if obj is not None:
                out.append(obj)
        return out  # type: ignore[return-value]

    def _remember(self, cls: type[PrimaryObject], snap: Any) -> None:
        if not snap.exists:
            self._models[snap.path] = None
            return
        models = self.store.models
        obj = cls.from_snapshot(snap) if models is None else models.load(cls, snap)
        self._models[snap.path] = obj
        self._loaded[snap.path] = (cls, snap)

    # -- output -------------------------------------------------------------------------
    def to_view_dict(self) -> dict[str, Any]:
        """Every exported attribute under its data key (camelCase by default)."""
        out: dict[str, Any] = {}
        for descriptor in self._fields.values():
            if descriptor.export_enabled:
                out[descriptor.data_key] = descriptor.dump(self)
        return out

    def to_snapshot(self) -> dict[str, Any]:
        """Seed name of :meth:`to_view_dict`."""
        return self.to_view_dict()

    # -- write path ----------------------------------------------------------------------
    def update(self, data: Mapping[str, Any]) -> None:
        """Apply ``data`` (data keys, as clients send them) through the setters.

        Unknown keys, read-only attributes and null values raise
        :class:`ValidationError` naming the key (REST and the generated
        Firestore rules refuse them too); values are checked against the
        declared field types.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"expected an object, got {type(data).__name__}")
        by_key = {d.data_key: d for d in self._fields.values() if d.import_enabled}
        unknown = sorted(k for k in data if k not in by_key)
        if unknown:
            raise ValidationError(
                f"unknown field(s) {unknown}; writable fields: "
                f"{sorted(k for k, d in by_key.items() if d.fset is not None)}",
                field=unknown[0],
            )
        for key, value in data.items():
            descriptor = by_key[key]
            if descriptor.fset is None:
                raise ValidationError("this field is read-only", field=key)
            if value is None:
                raise ValidationError("may not be null", field=key)
            try:
                descriptor.__set__(self, value)
            except ValidationError as e:  # name the key the client sent, not the attribute
                if e.field is not None and e.field == descriptor.name:
                    detail = "; ".join(str(m) for m in e.messages.get(e.field) or [str(e)])
                else:
                    detail = str(e)
                raise ValidationError(detail, field=key) from e

    def changed_models(self) -> list[PrimaryObject]:
        """Domain objects read by this view whose stored form changed since reading."""
        return [
            obj
            for path, obj in self._models.items()
            if obj is not None and obj.to_dict() != self._before(path)
        ]

    def _before(self, path: str) -> dict[str, Any] | None:
        loaded = self._loaded.get(path)
        if loaded is None:
            return None
        cls, snap = loaded
        return cls.from_snapshot(snap).to_dict()

    def save(
        self, transaction: Transaction | None = None, batch: WriteBatch | None = None, **kw: Any
    ) -> list[PrimaryObject]:
        """Write every changed domain object; returns them."""
        changed = self.changed_models()
        for obj in changed:
            obj.save(transaction=transaction, batch=batch, **kw)
        return changed

    def check_access(self, user_id: str | None) -> None:
        """Raise :class:`~boiler.exceptions.Forbidden` if ``user_id`` may not see this view.

        The default allows everyone; per-view rules override it.
        """

    def authorize(self, uid: str | _HasUid | None, claims: Mapping[str, Any] | None = None) -> None:
        """Raise :class:`~boiler.exceptions.Forbidden` unless the caller may see this view.

        ``uid`` is the caller's uid (None: unauthenticated) or a principal with
        ``uid`` and ``claims`` (:class:`boiler.auth.Principal`). Applies the
        declared ``Meta.access`` rule (:mod:`boiler.access`) to ``params`` and
        the claims, then the data-dependent :meth:`check_access`.
        """
        uid, claims = _caller(uid, claims)
        type(self).check_rule(self.params, uid, claims)
        self.check_access(uid)

    @classmethod
    def check_rule(
        cls,
        params: Mapping[str, Any],
        uid: str | _HasUid | None,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        """Apply only the declared ``Meta.access`` rule to ``params`` (it reads
        no documents: callable before the view is built); Forbidden unless
        the caller (a uid or a principal, as for :meth:`authorize`) passes."""
        uid, claims = _caller(uid, claims)
        _access.check(_access.rule_of(cls), params, uid, claims, view_name=cls.__name__)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(cls: type[V], store: Store, **params: Any) -> V | None:
        """Build from ``store`` and evaluate every attribute; None if a required
        document is missing (the view does not exist)."""
        view = cls(store, **params)
        try:
            view._data = view.to_view_dict()
        except NotFound:
            return None
        return view

    @property
    def data(self) -> dict[str, Any]:
        """The view dict evaluated at build time."""
        data = self.__dict__.get("_data")
        if data is None:
            data = self._data = self.to_view_dict()
        return data

    @classmethod
    def live_key(cls, **params: Any) -> Hashable:
        """Identity of the live view of ``cls`` with ``params``."""
        return (cls.__module__, cls.__qualname__, _freeze(params))

    @classmethod
    def get(
        cls: type[V],
        doc_id: str | None = None,
        *,
        once: bool = True,
        f_notify: Callable[..., None] | None = None,
        db: Database | None = None,
        engine: Engine | None = None,
        timeout: float = 10.0,
        **params: Any,
    ) -> V | LiveView[V]:
        """Build the view for ``params`` (``doc_id`` is stored as ``params["doc_id"]``).

        ``once=True``: read everything at one consistent point and return the
        view (:class:`NotFound` if a required document is missing).
        ``once=False``: return a :class:`LiveView`; ``f_notify(obj=view)`` runs
        after the first build and after every change to anything the view
        read, with ``obj=None`` while a required document is missing (say,
        the root was deleted). It needs a running engine: ``engine=`` or the
        context runtime; ``db=``, if given, must be that engine's database.
        """
        if doc_id is not None:
            params["doc_id"] = doc_id
        if once:
            if f_notify is not None:
                raise BoilerError("f_notify= is only meaningful with once=False")
            database = db if db is not None else _context_db()
            with database.transaction(read_only=True) as tx:
                view = cls(Store(tx), **params)
                view._data = view.to_view_dict()
            return view
        if engine is None:
            from .runtime.process import current_runtime

            if db is not None and not _is_context_db(db):
                raise BoilerError(
                    "once=False with db= other than the context database: pass "
                    "engine= (an Engine or runtime.engine on that database)"
                )
            engine = current_runtime().engine
        elif db is not None and engine.db is not db:
            raise BoilerError("db= is not the database of engine=: pass one or the other")
        return LiveView(cls, engine, params, f_notify, timeout=timeout)


class LiveView(Generic[V]):
    """A view kept fresh by the engine. ``current`` is the latest build (None
    while required documents are missing, and ``f_notify`` then gets
    ``obj=None``); ``dispose()`` stops it."""

    def __init__(
        self,
        view_cls: type[V],
        engine: Engine,
        params: dict[str, Any],
        f_notify: Callable[..., None] | None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.view_cls = view_cls
        self.params = params
        self._f_notify = f_notify
        self._lock = threading.Lock()
        self.current: V | None = None
        self.version: Any = None

        def compute(store: Store) -> V | None:
            return view_cls.build(store, **params)

        def on_result(view: V | None, version: Any) -> None:
            with self._lock:
                self.current, self.version = view, version
            if self._f_notify is not None:
                self._f_notify(obj=view)

        self.handle: LiveHandle = engine.live(compute, on_result, key=view_cls.live_key(**params))
        if timeout:
            self.handle.wait_built(timeout)

    def to_view_dict(self) -> dict[str, Any] | None:
        view = self.current
        return None if view is None else view.data

    def dispose(self) -> None:
        self.handle.dispose()

    def __repr__(self) -> str:
        return f"<LiveView {self.view_cls.__name__} {self.params!r}>"


def _path_of(cls: type[PrimaryObject], ref: str | None, doc_id: str | None) -> str:
    if ref is not None and doc_id is not None:
        raise TypeError("pass either a path or doc_id=, not both")
    if ref is not None:
        return paths.document_path(ref)
    if doc_id is None:
        raise TypeError(f"doc() needs a path or doc_id= for {cls.__name__}")
    return paths.document_path(f"{cls.collection_path()}/{doc_id}")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _context_db() -> Database:
    from .context import Context

    return Context.db


def _is_context_db(db: Database) -> bool:
    """Whether ``db`` is the context's database (creating no default context)."""
    from .context import Context

    return Context.is_configured and Context.db is db


__all__ = ["LiveView", "ViewModel"]


def _caller(
    caller: str | _HasUid | None, claims: Mapping[str, Any] | None
) -> tuple[str | None, Mapping[str, Any] | None]:
    """``(uid, claims)`` of a uid or a principal (explicit ``claims`` win)."""
    if caller is None or isinstance(caller, str):
        return caller, claims
    return caller.uid, caller.claims if claims is None else claims
