"""Catalogue proxies used by the engine tests, read from the shipped value bank."""

from outcomes.catalogue import read_catalogue_csv
from valuation import OutcomeProxy

PROXIES: dict[str, OutcomeProxy] = {
    row.code: OutcomeProxy(
        code=row.code,
        proxy_value=row.proxy_value,
        currency=row.currency,
        per=row.per,
        price_year=row.price_year,
        haircut=row.haircut,
        deadweight=row.deadweight,
        displacement=row.displacement,
        attribution=row.attribution,
        drop_off=row.drop_off,
        duration_years=row.duration_years,
    )
    for row in read_catalogue_csv()
}
