"""Config: keywords, environment, YAML, precedence, backend selection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from boiler.config import DEFAULT_DATABASE_PATH, Config
from boiler.database import open_database
from boiler.exceptions import ConfigurationError


def test_defaults_select_the_embedded_store() -> None:
    c = Config()
    assert c.backend == "embedded"
    assert c.database_path == DEFAULT_DATABASE_PATH
    assert c.database_options() == {"path": DEFAULT_DATABASE_PATH}
    assert c.testing is False and c.debug is False and c.certificate is None


def test_testing_uses_an_in_memory_store() -> None:
    c = Config(app_name="demo", testing=True)
    assert c.app_name == "demo"
    assert c.database_path == ":memory:"
    assert c.database_options() == {"path": ":memory:"}


def test_unknown_keyword_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'databse'"):
        Config(databse="embedded")


def test_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="database"):
        Config(database="mongo")
    with pytest.raises(ConfigurationError, match="testing"):
        Config(testing="maybe")
    with pytest.raises(ConfigurationError, match="app_name"):
        Config(app_name=3)


def test_firestore_selected_by_emulator_and_project() -> None:
    assert Config(emulator_host="127.0.0.1:8080").backend == "embedded"
    c = Config(emulator_host="127.0.0.1:8080", project_id="p1")
    assert c.backend == "firestore"
    assert c.database_options() == {"project": "p1", "emulator_host": "127.0.0.1:8080"}
    # explicit choice wins
    assert Config(emulator_host="h:1", project_id="p", database="embedded").backend == "embedded"


def test_missing_certificate_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError, match="nope.json"):
        Config(certificate_path=str(missing))
    with pytest.raises(ConfigurationError, match="other.json"):
        Config(certificate_path=str(tmp_path), certificate_filename="other.json")


def test_certificate_selects_firestore(tmp_path: Path) -> None:
    cert = tmp_path / "cert.json"
    cert.write_text("{}")
    by_path = Config(certificate_path=cert, project_id="p")
    by_name = Config(certificate_path=str(tmp_path), certificate_filename="cert.json")
    assert by_path.certificate == by_name.certificate == str(cert)
    assert by_path.backend == by_name.backend == "firestore"
    assert by_path.database_options()["certificate_path"] == str(cert)


def test_environment_and_google_conventions() -> None:
    env = {
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9999",
        "GOOGLE_CLOUD_PROJECT": "gproj",
        "BOILER_APP_NAME": "from-env",
        "BOILER_DEBUG": "yes",
    }
    c = Config.from_env(env)
    assert (c.emulator_host, c.project_id, c.app_name, c.debug) == (
        "127.0.0.1:9999",
        "gproj",
        "from-env",
        True,
    )
    assert c.backend == "firestore"
    # BOILER_ twins win over the Google variables; keywords win over both
    c2 = Config.from_env({**env, "BOILER_PROJECT_ID": "bproj"}, app_name="kw")
    assert c2.project_id == "bproj" and c2.app_name == "kw"


def test_yaml_with_precedence(tmp_path: Path) -> None:
    path = tmp_path / "boiler.yaml"
    path.write_text("app_name: from-yaml\ntesting: true\ndatabase_path: y.sqlite3\ndebug: true\n")
    c = Config.from_yaml(path, environ={})
    assert (c.app_name, c.testing, c.database_path, c.debug) == (
        "from-yaml",
        True,
        "y.sqlite3",
        True,
    )
    env = {"BOILER_APP_NAME": "from-env", "BOILER_DATABASE_PATH": "e.sqlite3"}
    c = Config.from_yaml(path, environ=env, database_path="k.sqlite3")
    assert (c.app_name, c.database_path) == ("from-env", "k.sqlite3")
    assert Config.from_yaml(path, environ=env, use_env=False).app_name == "from-yaml"
    # BOILER_CONFIG names a YAML file for from_env
    assert Config.from_env({"BOILER_CONFIG": str(path)}).app_name == "from-yaml"


def test_yaml_errors(tmp_path: Path) -> None:
    bad_key = tmp_path / "a.yaml"
    bad_key.write_text("app_name: x\ncolour: blue\n")
    with pytest.raises(ConfigurationError, match="'colour'"):
        Config.from_yaml(bad_key, environ={})
    not_map = tmp_path / "b.yaml"
    not_map.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigurationError, match="mapping"):
        Config.from_yaml(not_map, environ={})
    broken = tmp_path / "c.yaml"
    broken.write_text("app_name: [unclosed\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        Config.from_yaml(broken, environ={})
    with pytest.raises(ConfigurationError, match="missing.yaml"):
        Config.from_yaml(tmp_path / "missing.yaml", environ={})
    empty = tmp_path / "d.yaml"
    empty.write_text("")
    assert Config.from_yaml(empty, environ={}) == Config()


def test_immutable_value_semantics() -> None:
    c = Config(app_name="a", testing=True)
    with pytest.raises(AttributeError):
        c.app_name = "b"  # type: ignore[misc]
    d = c.replace(app_name="b")
    assert (c.app_name, d.app_name, d.testing) == ("a", "b", True)
    assert c == Config(app_name="a", testing=True) and hash(c) == hash(
        Config(app_name="a", testing=True)
    )
    assert "app_name='a'" in repr(c)
    with pytest.raises(ConfigurationError, match="bogus"):
        c.replace(bogus=1)


def test_nothing_is_read_at_import() -> None:
    env = {**os.environ, "BOILER_CONFIG": "/nonexistent/boiler.yaml", "BOILER_DATABASE": "bad"}
    code = "import boiler, boiler.config, boiler.context, boiler.domain_model; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_embedded_durability_is_configurable(tmp_path: Path) -> None:
    c = Config(database_path=str(tmp_path / "d.sqlite3"), database_durability="full")
    assert c.database_options() == {"path": str(tmp_path / "d.sqlite3"), "durability": "full"}
    env = Config.from_env({"BOILER_DATABASE_DURABILITY": " FULL ", "BOILER_TESTING": "1"})
    assert env.database_durability == "full"
    db = open_database(c.backend, **c.database_options())
    try:
        assert db.durability == "full"  # type: ignore[attr-defined]
    finally:
        db.close()


def test_bad_durability_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'database_durability' must be one of.*'fsync'"):
        Config(database_durability="fsync")
    with pytest.raises(ConfigurationError, match="'database_durability' applies to the embedded"):
        Config(emulator_host="h:1", project_id="p", database_durability="full")
