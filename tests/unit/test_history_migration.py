"""Migration 0017 turns the reasons the code wrote before into templates with figures."""

from __future__ import annotations

import importlib.util

import pytest

from config import PROJECT_ROOT

spec = importlib.util.spec_from_file_location(
    "m0017", PROJECT_ROOT / "migrations/versions/0017_history_reason_params.py"
)
m0017 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m0017)


@pytest.mark.parametrize(
    ("old", "template", "figures"),
    [
        (
            "valued at 1506 tokens of 3736 cents; threshold 1204",
            "valued at %(tokens)s tokens of %(price_cents)s each; threshold %(threshold)s tokens",
            {"tokens": 1506, "price_cents": 3736, "threshold": 1204},
        ),
        (
            "started: cost tranche 4501880 cents released, fee 90038 cents",
            "started: cost tranche %(cost_cents)s released, fee %(fee_cents)s",
            {"cost_cents": 4501880, "fee_cents": 90038},
        ),
        (
            "off_session payment 12 succeeded",
            "%(kind)s payment %(payment)s succeeded",
            {"kind": "off-session", "payment": "12"},
        ),
        ("charge failed: card_declined", "charge failed: %(code)s", {"code": "card_declined"}),
        (
            "funding closed (deadline passed): 85 of 100 tokens pledged, threshold 80: "
            "threshold met",
            "funding closed (deadline passed): %(pledged)s of %(total)s tokens pledged, "
            "threshold %(threshold)s: threshold met",
            {"pledged": 85, "total": 100, "threshold": 80},
        ),
    ],
)
def test_an_old_reason_becomes_its_template_and_figures(old, template, figures):
    assert m0017.templated(old) == (template, figures)
    # and the English the API shows reads as before, figures formatted
    assert "%(" not in template % figures


@pytest.mark.parametrize(
    "text", ["Funded elsewhere.", "cancelled by the buyer", "", "valued at lots of tokens"]
)
def test_a_persons_words_and_fixed_reasons_stay_as_they_are(text):
    assert m0017.templated(text) is None
