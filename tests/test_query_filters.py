"""The filter registry: one entry gives a filter its parsing, its description, its SQL and its
place in the help and error messages.  A filter added here, in the test, works end to end."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import ColumnElement

from indexer.db.models import Photo
from indexer.db.session import session_scope
from indexer.query import QueryError, parse, search
from indexer.query import filters as registry
from indexer.query.filters import FILTERS, Filter, Terms, extra_values, filter_keys, help_examples
from tests.factories import add_photo

TODAY = date(2024, 3, 15)


class CameraFilter(Filter):
    """camera:pixel — what a new filter (person: is next) amounts to: this class."""

    name, keys, example = "camera", ("camera",), "camera:Pixel"
    help_examples = ("camera:Pixel",)

    def read(self, key: str, value: str, terms: Terms) -> None:
        if not value.strip():
            raise QueryError("camera: needs a name")
        terms.extra.append((self.name, value.strip()))

    def describe(self, query) -> list[str]:  # noqa: ANN001
        return [f"camera {v!r}" for v in extra_values(query, self.name)]

    def conditions(self, query) -> list[ColumnElement[bool]]:  # noqa: ANN001
        return [Photo.camera.ilike(f"%{v}%") for v in extra_values(query, self.name)]


@pytest.fixture()
def camera_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "FILTERS", [*FILTERS, CameraFilter()])


def test_a_new_filter_is_one_entry(engine, camera_filter) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        add_photo(s, "/lib/pixel.jpg", faces=[("happy", 0.9)]).camera = "Google Pixel 7"
        add_photo(s, "/lib/canon.jpg", faces=[("happy", 0.95)]).camera = "Canon EOS R6"
    q = parse("happy camera:pixel", TODAY)
    assert q.extra == (("camera", "pixel"),)
    assert q.describe() == "happy, camera 'pixel'"
    with session_scope(engine) as s:
        assert [m.photo.path for m in search(s, q)] == ["/lib/pixel.jpg"]
    assert "camera" in filter_keys() and "camera:Pixel" in help_examples()
    with pytest.raises(QueryError, match="camera: needs a value, e.g. camera:Pixel"):
        parse("camera:", TODAY)


def test_unknown_filter_names_come_from_the_registry(camera_filter) -> None:  # noqa: ANN001
    with pytest.raises(QueryError, match="did you mean camera:"):
        parse("camra:x", TODAY)


def test_every_filter_key_is_parsed_by_its_entry() -> None:
    for flt in FILTERS:
        for key in flt.keys:
            example = flt.example_for(key)
            assert example.startswith(f"{key}:")
            parse(example, TODAY)  # each entry's own example is understood
