"""Model queries: where forms, conditions, ordering, limits (both backends)."""

from __future__ import annotations

import pytest

from boiler import attrs
from boiler.database import Database, FieldFilter, Query
from boiler.domain_model import DomainModel
from boiler.exceptions import InvalidQuery
from boiler.model_query import ModelQuery


class City(DomainModel):
    class Meta:
        collection_name = "cities"

    city_name = attrs.bproperty(type=str)
    country = attrs.bproperty(type=str)
    pop = attrs.bproperty(type=int)
    tags = attrs.bproperty(type=list)
    mayor = attrs.relation(dm_cls="Mayor")


class Mayor(DomainModel):
    class Meta:
        collection_name = "mayors"

    name = attrs.bproperty()


CITIES = [
    ("sf", "San Francisco", "USA", 8, ["coast"]),
    ("la", "Los Angeles", "USA", 40, ["coast", "big"]),
    ("dc", "Washington", "USA", 7, []),
    ("tok", "Tokyo", "Japan", 140, ["big"]),
    ("bj", "Beijing", "China", 210, ["big"]),
]


@pytest.fixture
def cities(ctx_db: Database) -> Database:
    for doc_id, name, country, pop, tags in CITIES:
        City.new(doc_id=doc_id, city_name=name, country=country, pop=pop, tags=tags).save()
    return ctx_db


def ids(query: ModelQuery[City]) -> list[str]:
    return sorted(c.doc_id for c in query)


def test_tuple_keyword_and_attribute_forms_agree(cities: Database) -> None:
    expected = ["dc", "la", "sf"]
    assert ids(City.where("country", "==", "USA")) == expected
    assert ids(City.where(("country", "==", "USA"))) == expected
    assert ids(City.where(country="USA")) == expected
    assert ids(City.where(City.country == "USA")) == expected
    # stored keys work as well as attribute names
    assert ids(City.where("cityName", "==", "Tokyo")) == ["tok"]
    assert ids(City.where(city_name="Tokyo")) == ["tok"]


def test_keyword_filters_are_never_ignored(cities: Database) -> None:
    assert ids(City.where(country="USA", pop=8)) == ["sf"]
    assert ids(City.where(country="Mars")) == []
    with pytest.raises(InvalidQuery, match="'population'"):
        City.where(population=8)
    with pytest.raises(InvalidQuery, match="'nope'"):
        City.where("nope", "==", 1)


def test_unsupported_operator(cities: Database) -> None:
    with pytest.raises(InvalidQuery, match="'=~'"):
        City.where("pop", "=~", 3)
    with pytest.raises(InvalidQuery, match="'like'"):
        City.where(("pop", "like", 3))
    with pytest.raises(InvalidQuery):
        City.where("just a string")
    with pytest.raises(InvalidQuery, match="OR"):
        _ = (City.pop < 3) | (City.pop > 100)


def test_comparisons_and_ranges(cities: Database) -> None:
    assert ids(City.where(City.pop > 100)) == ["bj", "tok"]
    assert ids(City.where(City.pop >= 140)) == ["bj", "tok"]
    assert ids(City.where(City.pop < 8)) == ["dc"]
    assert ids(City.where(City.pop <= 8)) == ["dc", "sf"]
    assert ids(City.where(City.country != "USA")) == ["bj", "tok"]
    assert ids(City.where(City.pop.in_([7, 210]))) == ["bj", "dc"]
    assert ids(City.where(City.country.not_in(["USA", "Japan"]))) == ["bj"]
    assert ids(City.where(City.tags.contains("coast"))) == ["la", "sf"]
    assert ids(City.where(City.tags.contains_any(["coast", "big"]))) == ["bj", "la", "sf", "tok"]


def test_chained_comparison_keeps_both_bounds(cities: Database) -> None:
    between = 8 <= City.pop <= 140
    assert [c[1:] for c in between.clauses] == [(">=", 8), ("<=", 140)]
    assert ids(City.where(between)) == ["la", "sf", "tok"]
    q = City.where(0 <= City.pop < 10)
    assert ids(q) == ["dc", "sf"]
    assert q.to_query() == City.where(City.pop >= 0, City.pop < 10).to_query()


def test_and_of_inline_conditions_and_ampersand(cities: Database) -> None:
    both = (City.country == "USA") and (City.pop > 7)
    assert len(both.clauses) == 2
    assert ids(City.where(both)) == ["la", "sf"]
    assert ids(City.where((City.country == "USA") & (City.pop > 7))) == ["la", "sf"]
    assert ids(City.where(City.country == "USA", City.pop > 7)) == ["la", "sf"]


def test_stale_truth_tests_do_not_leak_into_other_queries(cities: Database) -> None:
    probe = City.pop > 1000
    assert probe  # records the condition ...
    City.where(country="Japan")  # ... and where() forgets it
    assert ids(City.where(City.pop > 1)) == ["bj", "dc", "la", "sf", "tok"]


def test_order_by_and_limit(cities: Database) -> None:
    by_pop = City.all().order_by("pop")
    assert [c.doc_id for c in by_pop] == ["dc", "sf", "la", "tok", "bj"]
    top2 = City.all().order_by(City.pop, "DESCENDING").limit(2)
    assert [c.doc_id for c in top2] == ["bj", "tok"]
    assert [c.doc_id for c in City.where(country="USA").order_by("city_name")] == ["la", "sf", "dc"]
    assert City.all().order_by("pop").first().doc_id == "dc"  # type: ignore[union-attr]
    assert City.where(country="Mars").first() is None
    with pytest.raises(InvalidQuery, match="'size'"):
        City.all().order_by("size")
    with pytest.raises(InvalidQuery):
        City.all().limit(-1)


def test_to_query_is_the_backend_value(cities: Database) -> None:
    q = City.where(country="USA").order_by("pop").limit(2)
    expected = Query("cities").where(filter=FieldFilter("country", "==", "USA"))
    expected = expected.order_by("pop").limit(2)
    assert q.to_query() == expected and hash(q.to_query()) == hash(expected)
    assert q == City.where(City.country == "USA").order_by(City.pop).limit(2)
    assert [s.path for s in cities.query(q.to_query())] == ["cities/dc", "cities/sf"]
    assert "cities" in repr(q)


def test_queries_are_lazy_and_immutable(cities: Database) -> None:
    base = City.where(country="USA")
    narrowed = base.where(City.pop > 7)
    assert ids(base) == ["dc", "la", "sf"] and ids(narrowed) == ["la", "sf"]
    City.new(doc_id="ny", city_name="New York", country="USA", pop=80).save()
    assert ids(base) == ["dc", "la", "ny", "sf"]  # each iteration runs the query again


def test_relation_values_in_queries(cities: Database) -> None:
    boss = Mayor.new(doc_id="m1", name="Boss")
    boss.save()
    sf = City.get(doc_id="sf")
    sf.mayor = boss
    sf.save()
    assert ids(City.where(City.mayor == boss)) == ["sf"]
    assert ids(City.where(mayor="mayors/m1")) == ["sf"]


def test_fetch_on_an_explicit_db_and_in_a_transaction(cities: Database) -> None:
    assert len(City.where(country="USA").fetch(cities)) == 3
    with cities.transaction() as tx:
        found = City.where(country="Japan").fetch(transaction=tx)
        assert [c.doc_id for c in found] == ["tok"]
        found[0].pop = 141
        found[0].save(transaction=tx)
    assert City.get(doc_id="tok").pop == 141


def test_meta_keys_are_queryable(cities: Database) -> None:
    assert ids(City.where(obj_type="City")) == ["bj", "dc", "la", "sf", "tok"]
    assert ids(City.where(doc_id="la")) == ["la"]
