"""ViewModel: reads through the Store (dependencies), output, write path, get()."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from boiler import attrs
from boiler.database import Database, open_database
from boiler.domain_model import DomainModel
from boiler.exceptions import NotFound, ValidationError
from boiler.runtime import Engine
from boiler.store import Store
from boiler.testing import wait_for
from boiler.view_model import LiveView, ViewModel


class VmCountry(DomainModel):
    class Meta:
        collection_name = "vm_countries"

    country_name = attrs.bproperty(type=str)


class VmCity(DomainModel):
    class Meta:
        collection_name = "vm_cities"

    city_name = attrs.bproperty(type=str)
    population = attrs.bproperty(type=int)
    country = attrs.relation(dm_cls=VmCountry)


class CityCard(ViewModel):
    """``params``: ``doc_id`` (the city)."""

    city_name = attrs.bproperty(type=str)
    country_name = attrs.bproperty(type=str)
    population = attrs.bproperty(type=int)
    neighbours = attrs.bproperty(type=list)
    secret = attrs.bproperty(type=str, export_enabled=False)

    @property
    def city(self) -> VmCity:
        return self.doc(VmCity, doc_id=self.params["doc_id"])

    @city_name.getter
    def city_name(self) -> str:
        return self.city.city_name

    @city_name.setter
    def city_name(self, value: str) -> None:
        self.city.city_name = value

    @population.getter
    def population(self) -> int:
        return self.city.population

    @population.setter
    def population(self, value: int) -> None:
        self.city.population = value

    @country_name.getter
    def country_name(self) -> str:
        return self.doc(VmCountry, self.city.country).country_name

    @neighbours.getter
    def neighbours(self) -> list[str]:
        same = self.query(VmCity.where(VmCity.country == self.city.country))
        others = self.docs(VmCity, ["vm_cities/c2", "vm_cities/nowhere"], required=False)
        names = {c.city_name for c in [*same, *others] if c.doc_id != self.city.doc_id}
        return sorted(names)


@pytest.fixture
def cities(db: Database) -> Database:
    VmCountry.new(doc_id="us", country_name="USA").save(db=db)
    VmCountry.new(doc_id="mx", country_name="Mexico").save(db=db)
    VmCity.new(doc_id="c1", city_name="San Diego", population=1, country="vm_countries/us").save(
        db=db
    )
    VmCity.new(doc_id="c2", city_name="Tijuana", population=2, country="vm_countries/mx").save(
        db=db
    )
    VmCity.new(doc_id="c3", city_name="La Jolla", population=3, country="vm_countries/us").save(
        db=db
    )
    return db


def test_reads_are_recorded_as_dependencies(cities: Database) -> None:
    with cities.transaction(read_only=True) as tx:
        store = Store(tx)
        view = CityCard(store, doc_id="c1")
        data = view.to_view_dict()
    assert data["neighbours"] == ["La Jolla", "Tijuana"]
    deps = store.dependencies
    assert {"vm_cities/c1", "vm_countries/us", "vm_cities/c2", "vm_cities/nowhere"} <= set(
        deps.documents
    )
    assert deps.documents["vm_cities/nowhere"] is None  # a miss is a dependency too
    assert deps.documents["vm_cities/c1"] is not None
    (query,) = deps.queries
    assert set(deps.queries[query]) == {"vm_cities/c1", "vm_cities/c3"}
    assert "vm_cities/c3" in deps.paths


def test_to_view_dict_uses_camel_case_and_skips_unexported(cities: Database) -> None:
    view = CityCard.get(doc_id="c1", db=cities)
    assert view.to_view_dict() == {
        "cityName": "San Diego",
        "countryName": "USA",
        "population": 1,
        "neighbours": ["La Jolla", "Tijuana"],
    }


@pytest.mark.parametrize(
    ("data", "key", "text"),
    [
        ({"cityname": "x"}, "cityname", "unknown field"),
        ({"countryName": "Canada"}, "countryName", "read-only"),
        ({"population": "many"}, "population", "expected int"),
        ({"cityName": 5}, "cityName", "expected str"),
    ],
)
def test_update_errors_name_the_key(
    cities: Database, data: dict[str, Any], key: str, text: str
) -> None:
    view = CityCard.get(doc_id="c1", db=cities)
    with pytest.raises(ValidationError) as info:
        view.update(data)
    assert info.value.field == key
    assert str(info.value).startswith(f"{key}: ") and text in str(info.value)
    assert view.changed_models() == []


def test_update_rejects_a_non_mapping(cities: Database) -> None:
    view = CityCard.get(doc_id="c1", db=cities)
    with pytest.raises(ValidationError, match="expected an object"):
        view.update(["cityName"])  # type: ignore[arg-type]


def test_changed_models_and_save(cities: Database) -> None:
    view = CityCard.get(doc_id="c1", db=cities)
    assert view.changed_models() == []
    view.update({"cityName": "San Diego, CA", "population": 10})
    changed = view.changed_models()
    assert [m.doc_ref for m in changed] == ["vm_cities/c1"]
    cities.run_transaction(lambda tx: view.save(transaction=tx))
    stored = VmCity.get(doc_id="c1", db=cities)
    assert (stored.city_name, stored.population) == ("San Diego, CA", 10)
    assert VmCity.get(doc_id="c3", db=cities).city_name == "La Jolla"  # read, not written


def test_get_once_missing_document_is_not_found(cities: Database) -> None:
    with pytest.raises(NotFound) as info:
        CityCard.get(doc_id="atlantis", db=cities)
    assert info.value.path == "vm_cities/atlantis"
    assert CityCard.build(Store(cities), doc_id="atlantis") is None


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    eng = Engine(db).start()
    try:
        yield eng
    finally:
        eng.stop()


def test_get_live_notifies_on_any_dependency(cities: Database, engine: Engine) -> None:
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def notify(obj: CityCard) -> None:
        with lock:
            seen.append(obj.data)

    def last() -> dict[str, Any] | None:
        with lock:
            return seen[-1] if seen else None

    live = CityCard.get(doc_id="c1", once=False, f_notify=notify, engine=engine)
    assert isinstance(live, LiveView)
    try:
        assert last() == CityCard.get(doc_id="c1", db=cities).to_view_dict()
        assert live.to_view_dict() == last()
        # Not the root: the country document ...
        cities.update("vm_countries/us", {"countryName": "United States"})
        wait_for(lambda: (last() or {}).get("countryName") == "United States", timeout=10)
        # ... a query result (a new city in the same country) ...
        VmCity.new(doc_id="c4", city_name="Del Mar", country="vm_countries/us").save(db=cities)
        wait_for(lambda: "Del Mar" in (last() or {}).get("neighbours", []), timeout=10)
        # ... and a document that was missing when first read.
        VmCity.new(doc_id="nowhere", city_name="Nowhere", country="vm_countries/mx").save(db=cities)
        wait_for(lambda: "Nowhere" in (last() or {}).get("neighbours", []), timeout=10)
        assert engine.wait_idle(10)
        assert live.to_view_dict() == CityCard.get(doc_id="c1", db=cities).to_view_dict()
    finally:
        live.dispose()
    count = len(seen)
    cities.update("vm_countries/us", {"countryName": "after dispose"})
    assert engine.wait_idle(10)
    assert len(seen) == count


def test_f_notify_hears_the_view_disappear_and_return(cities: Database, engine: Engine) -> None:
    seen: list[Any] = []
    lock = threading.Lock()

    def notify(obj: CityCard | None) -> None:
        with lock:
            seen.append(None if obj is None else obj.data["cityName"])

    def last() -> Any:
        with lock:
            return seen[-1] if seen else "nothing yet"

    live = CityCard.get(doc_id="c1", once=False, f_notify=notify, engine=engine)
    assert isinstance(live, LiveView)
    try:
        assert last() == "San Diego"
        cities.delete("vm_cities/c1")  # the root: the view is gone (it used to stay silent)
        wait_for(lambda: last() is None, timeout=10)
        assert live.current is None
        VmCity.new(doc_id="c1", city_name="Back", country="vm_countries/us").save(db=cities)
        wait_for(lambda: last() == "Back", timeout=10)
    finally:
        live.dispose()


def test_live_get_refuses_a_db_its_engine_does_not_read(cities: Database, engine: Engine) -> None:
    from boiler.exceptions import BoilerError

    other = open_database("embedded", path=":memory:")
    try:
        with pytest.raises(BoilerError, match="db= is not the database of engine="):
            CityCard.get(doc_id="c1", once=False, db=other, engine=engine)
        # no engine: the context runtime's, which reads the context database, not ``other``
        with pytest.raises(BoilerError, match="pass engine="):
            CityCard.get(doc_id="c1", once=False, db=other)
    finally:
        other.close()
    live = CityCard.get(doc_id="c1", once=False, db=cities, engine=engine)
    assert isinstance(live, LiveView)
    live.dispose()


def test_f_notify_needs_live(cities: Database) -> None:
    from boiler.exceptions import BoilerError

    with pytest.raises(BoilerError, match="once=False"):
        CityCard.get(doc_id="c1", db=cities, f_notify=lambda obj: None)
