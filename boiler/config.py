"""Configuration: keywords, environment variables and an optional YAML file.

Precedence, highest first: **keywords > environment > YAML file > defaults**.
``Config(...)`` uses keywords only (predictable in tests);
:meth:`Config.from_env` adds the environment and :meth:`Config.from_yaml` a
YAML file plus the environment. Nothing is read at import time.

Environment variables: ``BOILER_<KEY>`` for every key (``BOILER_APP_NAME``,
``BOILER_TESTING``, ``BOILER_DATABASE``, ``BOILER_DATABASE_PATH``,
``BOILER_DATABASE_DURABILITY``, ...),
``BOILER_CONFIG`` (a YAML file for :meth:`Config.from_env`), and the Google
conventions ``FIRESTORE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT`` (a
``BOILER_`` variable wins over them).

Backend choice (:attr:`Config.backend`): ``database`` if given; otherwise
Firestore when an emulator host and a project are set or a certificate is
configured; otherwise the embedded store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError

#: Recognised keys and their defaults.
KEYS: dict[str, Any] = {
    "app_name": None,
    "testing": False,
    "debug": False,
    "certificate_path": None,
    "certificate_filename": None,
    "database": None,
    "database_path": None,
    "database_durability": None,
    "project_id": None,
    "emulator_host": None,
}
_BOOL_KEYS = frozenset({"testing", "debug"})
_BACKENDS = ("embedded", "firestore")
#: Default SQLite file of the embedded store (relative to the working directory).
DEFAULT_DATABASE_PATH = "boiler.sqlite3"
#: Extra environment variables (lower precedence than their ``BOILER_`` twin).
_ENV_ALIASES = {"emulator_host": "FIRESTORE_EMULATOR_HOST", "project_id": "GOOGLE_CLOUD_PROJECT"}


def _parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
    raise ConfigurationError(f"config key {key!r} must be a boolean, got {value!r}")


class Config:
    """Immutable application configuration.

    ``Config(app_name="demo", testing=True)`` selects the embedded store in
    memory. Unknown keywords raise :class:`ConfigurationError` naming them; a
    configured certificate file that does not exist raises too.

    ``certificate_path`` is the service-account JSON file; with
    ``certificate_filename`` it is the directory holding that file. A lone
    ``certificate_filename`` is relative to the working directory.
    ``database_path`` defaults to ``:memory:`` when ``testing`` is true, else
    to ``boiler.sqlite3`` in the working directory. ``database_durability``
    (embedded store only) is ``"normal"`` (default) or ``"full"`` (every commit
    synced to disk; see :class:`~boiler.database.memory.EmbeddedDatabase`).
    """

    app_name: str | None
    testing: bool
    debug: bool
    certificate_path: str | None
    certificate_filename: str | None
    database: str | None
    database_path: str
    database_durability: str | None
    project_id: str | None
    emulator_host: str | None

    def __init__(self, **keywords: Any) -> None:
        unknown = sorted(set(keywords) - set(KEYS))
        if unknown:
            raise ConfigurationError(
                f"unknown config key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(KEYS)}"
            )
        values = {**KEYS, **{k: v for k, v in keywords.items() if v is not None}}
        for key in _BOOL_KEYS:
            values[key] = _parse_bool(key, values[key])
        for key, value in values.items():
            if key not in _BOOL_KEYS and value is not None and not isinstance(value, str | Path):
                raise ConfigurationError(f"config key {key!r} must be a string, got {value!r}")
            if isinstance(value, Path):
                values[key] = str(value)
        database = values["database"]
        if database is not None:
            database = str(database).strip().lower() or None
            if database not in (None, *_BACKENDS):
                raise ConfigurationError(
                    f"config key 'database' must be one of {_BACKENDS}, got {values['database']!r}"
                )
            values["database"] = database
        durability = values["database_durability"]
        if durability is not None:
            from .database._sqlite import DURABILITY  # the embedded store's values

            durability = values["database_durability"] = str(durability).strip().lower()
            if durability not in DURABILITY:
                raise ConfigurationError(
                    f"config key 'database_durability' must be one of {tuple(DURABILITY)}, "
                    f"got {keywords['database_durability']!r}"
                )
        if values["database_path"] is None:
            values["database_path"] = ":memory:" if values["testing"] else DEFAULT_DATABASE_PATH
        for key, value in values.items():
            object.__setattr__(self, key, value)
        certificate = self.certificate
        if certificate is not None and not os.path.isfile(certificate):
            raise ConfigurationError(f"certificate file not found: {certificate!r}")
        if durability is not None and self.backend != "embedded":
            raise ConfigurationError(
                "config key 'database_durability' applies to the embedded store only; "
                f"this configuration selects {self.backend!r}"
            )

    # -- constructors ---------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **keywords: Any) -> Config:
        """Environment (and the YAML file named by ``BOILER_CONFIG``) under ``keywords``."""
        env = os.environ if environ is None else environ
        yaml_file = env.get("BOILER_CONFIG")
        base = _read_yaml(yaml_file) if yaml_file else {}
        return cls(**{**base, **_read_env(env), **_present(keywords)})

    @classmethod
    def from_yaml(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        use_env: bool = True,
        **keywords: Any,
    ) -> Config:
        """The YAML mapping at ``path``, under the environment (unless ``use_env``
        is false), under ``keywords``."""
        env = (os.environ if environ is None else environ) if use_env else {}
        return cls(**{**_read_yaml(path), **_read_env(env), **_present(keywords)})

    # -- derived values -------------------------------------------------------
    @property
    def certificate(self) -> str | None:
        """The resolved certificate file path, or None when none is configured."""
        if self.certificate_filename:
            if self.certificate_path:
                return os.path.join(self.certificate_path, self.certificate_filename)
            return self.certificate_filename
        return self.certificate_path

    @property
    def backend(self) -> str:
        """``"embedded"`` or ``"firestore"`` (see the module docs for the rule)."""
        if self.database:
            return self.database
        if (self.emulator_host and self.project_id) or self.certificate:
            return "firestore"
        return "embedded"

    def database_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`boiler.database.open_database`."""
        if self.backend == "embedded":
            if self.database_durability is None:
                return {"path": self.database_path}
            return {"path": self.database_path, "durability": self.database_durability}
        options: dict[str, Any] = {"project": self.project_id}
        if self.emulator_host:
            options["emulator_host"] = self.emulator_host
        if self.certificate:
            options["certificate_path"] = self.certificate
        return options

    def to_dict(self) -> dict[str, Any]:
        """Every key with its effective value."""
        return {key: getattr(self, key) for key in KEYS}

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return type(self)(**{**self.to_dict(), **changes})

    # -- value semantics ------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is immutable; use config.replace({name}=...)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v != KEYS[k])
        return f"Config({shown})"


def _present(keywords: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in keywords.items() if v is not None}


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in KEYS:
        alias = _ENV_ALIASES.get(key)
        for name in (f"BOILER_{key.upper()}", alias):
            if name and environ.get(name):
                values[key] = environ[name]
                break
    return values


def _read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigurationError(f"config file {str(path)!r} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {str(path)!r} must hold a mapping of keys")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown config key(s) {', '.join(map(repr, unknown))} in {str(path)!r}"
        )
    return {str(k): v for k, v in data.items()}


__all__ = ["DEFAULT_DATABASE_PATH", "KEYS", "Config"]
