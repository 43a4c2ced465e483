"""The outcome catalogue on the database: seeded, exact, append-only."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from outcomes.catalogue import (
    NewOutcomeType,
    OutcomeType,
    add_outcome_type,
    list_outcome_types,
    read_catalogue_csv,
    retire_outcome_type,
)
from outcomes.errors import Conflict, NotFound, ValidationFailed
from outcomes.valuations import LineRequest, PreviewRequest, preview
from tests.factories import OutcomeTypeFactory
from valuation import Per

NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)


def new_type(**overrides) -> NewOutcomeType:
    values = dict(
        code="EMP_YOUTH_TO_WORK",
        name="Young person into work",
        unit="person",
        proxy_value=Decimal("12000.50"),
        currency="EUR",
        per=Per.YEAR,
        price_year=2025,
        basis="fiscal",
        haircut=Decimal("1"),
        deadweight=Decimal("0.25"),
        displacement=Decimal("0.1"),
        attribution=Decimal("0.2"),
        drop_off=Decimal("0.3"),
        duration_years=2,
        source="Gemeente Rotterdam",
        url="https://example.org",
        licence="CC BY",
    )
    values.update(overrides)
    return NewOutcomeType(**values)


def test_the_migration_seeds_the_shipped_value_bank_exactly(session):
    shipped = {row.code: row for row in read_catalogue_csv()}

    stored = {t.code: t for t in session.scalars(select(OutcomeType))}

    assert set(stored) == set(shipped)
    assert len(stored) == 14
    for code, row in shipped.items():
        for name in (
            "proxy_value",
            "haircut",
            "deadweight",
            "displacement",
            "attribution",
            "drop_off",
        ):
            assert getattr(stored[code], name) == getattr(row, name), (code, name)
        assert (stored[code].per, stored[code].price_year, stored[code].source) == (
            row.per,
            row.price_year,
            row.source,
        )


def test_decimals_round_trip_exactly(session):
    OutcomeTypeFactory(
        code="EXACT", proxy_value=Decimal("1234.567891"), deadweight=Decimal("0.2751")
    )
    session.rollback()

    stored = session.scalars(select(OutcomeType).where(OutcomeType.code == "EXACT")).one()

    assert stored.proxy_value == Decimal("1234.567891")
    assert str(stored.deadweight) == "0.2751"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("deadweight", "0.96"),
        ("drop_off", "-0.1"),
        ("haircut", "0"),
        ("haircut", "1.5"),
        ("proxy_value", "0"),
        ("duration_years", "0"),
    ],
)
def test_the_database_refuses_values_the_method_cannot_use(app, column, value):
    stored = int(value) if column == "duration_years" else Decimal(value)
    statement = (
        update(OutcomeType.__table__).where(OutcomeType.code == "WELLBY").values({column: stored})
    )
    with app.extensions["db"].engine.connect() as conn:
        with pytest.raises(IntegrityError):
            conn.execute(statement)
        conn.rollback()


def test_an_admin_adds_an_outcome_type(session):
    created = add_outcome_type(session, new_type(code="emp_youth_to_work"), now=NOW)
    session.commit()

    assert created.code == "EMP_YOUTH_TO_WORK"
    assert [t.code for t in list_outcome_types(session, q="young person into work")] == [
        "EMP_YOUTH_TO_WORK"
    ]


def test_a_code_is_never_reused_even_after_retirement(session):
    retire_outcome_type(session, "WELLBY", now=NOW)

    with pytest.raises(Conflict) as refused:
        add_outcome_type(session, new_type(code="wellby"), now=NOW)

    assert refused.value.code == "outcome_type_exists"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"currency": "USD"}, "currency"),
        ({"basis": "vibes"}, "basis"),
        ({"per": Per.ONCE, "duration_years": 3, "drop_off": Decimal(0)}, "duration_years"),
    ],
)
def test_an_outcome_type_the_method_cannot_value_is_refused(session, overrides, field):
    with pytest.raises(ValidationFailed) as refused:
        add_outcome_type(session, new_type(**overrides), now=NOW)

    assert field in refused.value.errors


def test_a_retired_type_is_hidden_by_default_and_refused_for_new_valuations(session):
    retire_outcome_type(session, "WELLBY", now=NOW)
    again = retire_outcome_type(session, "WELLBY", now=datetime(2027, 1, 1, tzinfo=UTC))
    session.commit()

    assert again.retired_at == NOW
    assert "WELLBY" not in {t.code for t in list_outcome_types(session)}
    assert "WELLBY" in {t.code for t in list_outcome_types(session, include_retired=True)}
    with pytest.raises(ValidationFailed) as refused:
        preview(
            session,
            PreviewRequest(2027, [LineRequest("EVICTION_PREVENTED", 1), LineRequest("WELLBY", 3)]),
        )
    assert list(refused.value.errors) == ["lines.1.outcome_type"]


def test_retiring_an_unknown_code_is_not_found(session):
    with pytest.raises(NotFound):
        retire_outcome_type(session, "NO_SUCH_TYPE", now=NOW)


def test_filters_by_basis_per_and_text(session):
    assert {t.code for t in list_outcome_types(session, basis="wellbeing")} == {"WELLBY"}
    assert {t.code for t in list_outcome_types(session, basis="social")} == {
        "DOMESTIC_VIOLENCE_AVOIDED"
    }
    assert all(t.per is Per.ONCE for t in list_outcome_types(session, per=Per.ONCE))
    assert {t.code for t in list_outcome_types(session, q="GMCA unit cost database HO1")} == {
        "EVICTION_PREVENTED"
    }


def test_preview_values_the_worked_project_from_the_database(session):
    valuation, rows = preview(
        session,
        PreviewRequest(
            2027, [LineRequest("EMP_BIJSTAND_TO_WORK", 20), LineRequest("youth_neet_to_eet", 10)]
        ),
    )

    assert valuation.total_conservative_value_cents == 30577657
    assert valuation.tokens_total == 3057
    assert len(rows) == 7
