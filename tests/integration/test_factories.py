"""Every model has a factory-boy factory, and each one builds a valid row."""

import pytest
from sqlalchemy import inspect

from outcomes.db import Base
from tests import factories

FACTORIES = {
    obj._meta.model.__name__: obj
    for obj in vars(factories).values()
    if isinstance(obj, type)
    and issubclass(obj, factories.BaseFactory)
    and obj is not factories.BaseFactory
}


def test_every_model_has_a_factory_or_a_stated_reason():
    models = {mapper.class_.__name__ for mapper in Base.registry.mappers}

    assert models - set(FACTORIES) == set(factories.WITHOUT_FACTORY)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_each_factory_saves_a_valid_row(session, name):
    made = FACTORIES[name]()

    session.rollback()
    assert session.get(type(made), inspect(made).identity) is not None
