"""The whole journey in headless Chromium, through the web pages only.

An entrepreneur registers and submits a project; the panel values and lists
it; two buyers pledge with test cards, one of which is declined when charged
and then paid on-session; the scheduler is ticked past the deadline and the
start; the entrepreneur reports progress; past the end an evaluator records
results with an evidence file; the panel approves; the project settles; a
buyer retires tokens for a social-return obligation, downloads the
certificate, and the public registry shows the retirement.

Only the scheduler's ticks (the time passing) and the accounts of the panel
and the evaluator (made with the CLI in real life) come from outside the pages.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pypdfium2
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from marketplace.accounts.models import Role, User
from marketplace.funding.models import Pledge
from marketplace.payments.models import Payment, Refund
from marketplace.projects.models import Project
from marketplace.registry.models import BlockStatus, TokenBlock
from tests.factories import DEFAULT_PASSWORD, OrganisationFactory, UserFactory
from tests.integration.funding_support import tick
from tests.integration.test_dashboards import ledger_total, read_csv
from tests.support.mail import inbox, link_to, smtp  # noqa: F401 - fixtures

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# The fields a person fills in that no label names (by for=, by wrapping, or aria-label).
UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(f => !['hidden', 'submit', 'button'].includes(f.type))
  .filter(f => !(f.labels && f.labels.length) && !f.getAttribute('aria-label'))
  .map(f => f.name || f.id)"""


# What sticks out past the right edge of the window: the page's own width, and the
# outermost elements beyond the edge that no scrolling box of their own holds.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const out = [...document.body.querySelectorAll('*')]
    .filter(el => el.getBoundingClientRect().right > width + 1 && !scrolls(el))
    .filter(el => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width + 1)
    .map(el => el.tagName.toLowerCase()
      + (el.className ? '.' + String(el.className).split(' ')[0] : '')
      + ' ' + Math.round(el.getBoundingClientRect().right) + 'px');
  return {width, scroll: document.documentElement.scrollWidth, out: out.slice(0, 8)};
}"""
WIDTHS = {"desktop": 1280, "phone": 390}


class Journey:
    def __init__(self, chromium, base: str, screenshots, width: int = 1280, inbox=None) -> None:
        self.chromium, self.base, self.screenshots = chromium, base, screenshots
        self.width = width
        self.shots = 0
        self.inbox = inbox

    def person(self) -> Page:
        """A browser of its own (its own cookies), as wide as the journey's screen."""
        context = self.chromium.new_context(
            base_url=self.base,
            viewport={"width": self.width, "height": 900},
            is_mobile=self.width < 600,
            has_touch=self.width < 600,
        )
        context.set_default_timeout(15_000)
        return context.new_page()

    def shot(self, page: Page, name: str) -> None:
        """Save the page as an artefact, and check that every field on it has a label and
        that nothing is wider than the screen (a table scrolls inside its own box)."""
        self.shots += 1
        page.screenshot(path=str(self.screenshots / f"{self.shots:02d}-{name}.png"), full_page=True)
        unlabelled = page.evaluate(UNLABELLED_FIELDS)
        assert unlabelled == [], (name, unlabelled)
        fits = page.evaluate(OVERFLOW)
        assert fits["scroll"] <= fits["width"] and fits["out"] == [], (name, fits)

    def open_menu(self, page: Page) -> None:
        """On a narrow screen the menu is folded behind its button: unfold it."""
        toggle = page.get_by_role("button", name="Menu")
        if self.width < 600:
            expect(toggle).to_be_visible()
            expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "true")
        else:
            expect(toggle).to_be_hidden()

    def log_in(self, page: Page, email: str, password: str = DEFAULT_PASSWORD) -> None:
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.get_by_role("button", name="Log in").click()
        self.open_menu(page)
        expect(
            page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))
        ).to_be_visible()

    def register(self, page: Page, *, name: str, organisation: str, email: str, role: str) -> None:
        page.goto("/register")
        page.fill("#name", name)
        page.fill("#organisation", organisation)
        page.fill("#email", email)
        page.fill("#password", DEFAULT_PASSWORD)
        page.check(f"input[name=role][value={role}]")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator(".flash-error, .error-summary")).to_have_count(0)
        # The address is confirmed from the e-mail, as the person does, before anything else.
        expect(page.locator(".unverified")).to_contain_text("Confirm your e-mail address")
        page.goto(link_to(self.inbox, email))
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator(".flash-success")).to_contain_text("your e-mail address is confirmed")
        expect(page.locator(".unverified")).to_have_count(0)
        self.shot(page, f"address-confirmed-{role}")

    def verify(self, panel: Page, organisation_id: int) -> None:
        """The panel checks the organisation's legal details and verifies it."""
        panel.goto(f"/organisations/{organisation_id}")
        panel.get_by_role("button", name=re.compile("^Verify")).click()
        expect(panel.get_by_text("The organisation is verified.")).to_be_visible()


def organisation_of(session, email: str) -> int:
    session.rollback()
    found = session.scalars(select(User).where(User.email == email)).one().organisation_id
    session.rollback()
    return found


def verify_by_hand(session, email: str, legal_name: str, registry_id: str) -> None:
    """A buyer's legal details as its owner would enter them (the page is shown above)."""
    session.rollback()
    organisation = session.scalars(select(User).where(User.email == email)).one().organisation
    organisation.legal_name, organisation.registry_id = legal_name, registry_id
    session.commit()


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_whole_journey_in_a_browser(
    app, live_server, chromium, screenshots, session, screen, inbox
):
    journey = Journey(chromium, live_server, screenshots, WIDTHS[screen], inbox)
    admin = UserFactory(role=Role.ADMIN, email="panel@som.example", name="Anouk de Vries")
    evaluator = UserFactory(
        role=Role.EVALUATOR,
        email="evaluator@som.example",
        name="Pieter Bakker",
        organisation=OrganisationFactory(name="Maasstad Impact Evaluatie"),
    )
    session.commit()
    today = date.today()
    deadline, start = today + timedelta(days=20), today + timedelta(days=30)
    end = start + timedelta(days=365)

    # An entrepreneur registers and submits a project.
    owner = journey.person()
    journey.register(
        owner,
        name="Samira El Amrani",
        organisation="Buurtwerk Delfshaven",
        email="samira@buurtwerk.example",
        role="entrepreneur",
    )
    # Its legal details, which the panel checks against the registry before it submits.
    owner.goto("/organisation")
    owner.fill("#legal_name", "Stichting Buurtwerk Delfshaven")
    owner.fill("#registry_id", "41234567")
    owner.fill("#address", "Schiedamseweg 1, 3026 AA Rotterdam")
    owner.get_by_role("button", name="Save profile").click()
    expect(owner.locator(".flash-success")).to_be_visible()
    panel = journey.person()
    journey.log_in(panel, admin.email)
    session.rollback()
    journey.verify(
        panel,
        session.scalars(select(User).where(User.email == "samira@buurtwerk.example"))
        .one()
        .organisation_id,
    )
    owner.goto("/projects/new")
    owner.fill("#title", "Werkplaats Delfshaven")
    owner.fill("#summary", "A repair workshop where people on social assistance learn a trade.")
    owner.fill("#city", "Rotterdam")
    owner.select_option("#theme", "work")
    owner.fill("#budget", "60000")
    owner.fill("#premium", "25")
    owner.fill("#funding_deadline", deadline.isoformat())
    owner.fill("#start_date", start.isoformat())
    owner.fill("#end_date", end.isoformat())
    owner.select_option("#outcomes-0-outcome_type", "EMP_BIJSTAND_TO_WORK")
    owner.fill("#outcomes-0-target_quantity", "20")
    journey.shot(owner, "new-project")
    owner.get_by_role("button", name="Save the draft").click()
    owner.get_by_role("button", name="Submit to the expert panel").click()
    expect(owner.locator(".badge.state-submitted")).to_be_visible()
    project_url = owner.url
    project_id = int(re.search(r"/projects/(\d+)", project_url).group(1))

    # The panel values and lists it.
    panel.goto("/review")
    journey.shot(panel, "review-queue")
    panel.get_by_role("link", name="Werkplaats Delfshaven").first.click()
    panel.get_by_role("button", name="Value the project").click()
    panel.get_by_role("button", name="List for funding").click()
    expect(panel.locator(".badge.state-funding")).to_be_visible()
    session.rollback()
    total = session.get(Project, project_id).tokens_total  # as the page shows it

    # Two buyers pledge: one with a card that works, one that is declined when charged.
    bank = journey.person()
    journey.register(
        bank,
        name="Lotte Jansen",
        organisation="Havenstad Bank",
        email="lotte@havenstad.example",
        role="buyer",
    )
    verify_by_hand(session, "lotte@havenstad.example", "Havenstad Bank N.V.", "24412345")
    journey.verify(panel, organisation_of(session, "lotte@havenstad.example"))
    bank.goto("/projects")
    journey.shot(bank, "marketplace")
    bank.get_by_role("link", name="Werkplaats Delfshaven").first.click()
    journey.shot(bank, "project")
    if journey.width >= 1024:  # the valuation shows all its columns, tokens come from the last
        table = bank.locator(".table-scroll:has(table.valuation-lines)")
        assert table.evaluate("box => box.scrollWidth <= box.clientWidth")
    tokens = total * 55 // 100
    bank.fill("#tokens", str(tokens))
    price = session.get(Project, project_id).token_price_cents
    amount = f"€{tokens * price // 100:,}.{tokens * price % 100:02d}"
    expect(bank.locator("output.pledge-total")).to_have_text(f"{tokens:,} tokens = {amount}")
    bank.check("input[name=payment_method][value=pm_card_visa]")
    bank.get_by_role("button", name="Review the pledge").click()
    # the review step: the consequence in words and figures, nothing saved yet
    expect(
        bank.get_by_text(re.compile(rf"{tokens:,} tokens at .* = {re.escape(amount)}"))
    ).to_be_visible()
    journey.shot(bank, "pledge-review")
    bank.get_by_role("button", name=f"Pledge {amount}").click()
    expect(bank.locator(".flash-success")).to_be_visible()
    city = journey.person()
    journey.register(
        city,
        name="Daan Smit",
        organisation="Gemeente Rotterdam",
        email="daan@rotterdam.example",
        role="buyer",
    )
    verify_by_hand(session, "daan@rotterdam.example", "Gemeente Rotterdam", "27372145")
    journey.verify(panel, organisation_of(session, "daan@rotterdam.example"))
    city.goto(project_url)
    city.fill("#tokens", str(total * 40 // 100))
    city.check("input[name=payment_method][value=pm_card_chargeCustomerFail]")
    city.get_by_role("button", name="Review the pledge").click()
    city.get_by_role("button", name=re.compile(r"^Pledge €")).click()
    expect(city.locator(".flash-success")).to_be_visible()

    # The entrepreneur sets up payouts at (local) Stripe.
    owner.goto("/payouts")
    owner.get_by_role("button", name=re.compile("Set up payouts")).click()
    expect(owner.get_by_text("Ready.")).to_be_visible()  # back from Stripe, onboarded
    journey.shot(owner, "payouts")

    # Past the deadline: the pledges are charged; the municipality's card is declined.
    tick(app, _instant(deadline + timedelta(days=1)))
    city.goto("/pledges")
    journey.shot(city, "pledges-payment-failed")
    city.check("input[name=payment_method][value=pm_card_visa]")
    city.get_by_role("button", name=re.compile("Pay .* now")).click()
    expect(city.locator(".badge", has_text="paid")).to_be_visible()

    # Past the start: the project runs, and the entrepreneur reports progress.
    tick(app, _instant(start))
    owner.goto(project_url)
    owner.fill("#text", "Eleven people started at the workshop; six already work for employers.")
    owner.fill(f"#figure-{_first_outcome(owner)}", "6")
    owner.set_input_files(
        "#file", files=[{"name": "cohort-1.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    owner.get_by_role("button", name="Post the report").click()
    expect(owner.get_by_text("Your progress report is published.")).to_be_visible()
    journey.shot(owner, "progress-report")

    # Past the end: the panel assigns the evaluator, who records results with evidence.
    tick(app, _instant(end + timedelta(days=1)))
    panel.goto("/evaluations")
    assign = panel.locator(f"form[action='/projects/{project_id}/evaluator']")
    assign.locator("select").select_option(str(evaluator.id))
    assign.get_by_role("button", name="Assign").click()
    expect(panel.get_by_text("The evaluator is assigned.")).to_be_visible()
    checker = journey.person()
    journey.log_in(checker, evaluator.email)
    checker.goto("/evaluations")
    journey.shot(checker, "evaluation-queue")
    checker.get_by_role("link", name=re.compile("Werkplaats Delfshaven")).first.click()
    # First the conflict-of-interest declaration: results stay locked until it is signed.
    checker.get_by_role("checkbox").check()
    checker.fill("#interests", "None.")
    checker.get_by_role("button", name="Sign the declaration").click()
    expect(checker.get_by_text("Declaration signed.")).to_be_visible()
    outcome = _first_outcome(checker, prefix="verified-")
    checker.fill(f"#verified-{outcome}", "14")
    checker.fill(f"#note-{outcome}", "Payroll records checked against UWV data.")
    checker.set_input_files(
        "#file", files=[{"name": "uwv-extract.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    checker.get_by_role("button", name="Upload").click()  # before saving: nothing typed is lost
    expect(checker.get_by_text("uwv-extract.pdf is stored with its SHA-256.")).to_be_visible()
    expect(checker.locator(f"#verified-{outcome}")).to_have_value("14")
    expect(checker.locator(f"#note-{outcome}")).to_have_value(
        "Payroll records checked against UWV data."
    )
    checker.get_by_role("button", name="Submit for approval").click()
    expect(checker.get_by_text("Submitted for approval.")).to_be_visible()
    journey.shot(checker, "evaluation")

    # The panel approves; the scheduler settles.
    panel.goto(checker.url)
    panel.get_by_role("button", name="Approve the results").click()
    expect(panel.get_by_text("14 of 20 verified.")).to_be_visible()
    journey.shot(panel, "approval-review")
    panel.get_by_role("button", name="Approve the results").click()
    expect(panel.get_by_text(re.compile("Approved"))).to_be_visible()
    tick(app, _instant(end + timedelta(days=1)) + timedelta(minutes=5))
    owner.goto(project_url)
    expect(owner.locator(".badge.state-settled")).to_be_visible()
    bank.goto(f"/projects/{project_id}/settlement")
    journey.shot(bank, "settlement")
    expect(bank.get_by_text("Havenstad Bank")).to_be_visible()

    # The bank retires tokens for a social-return obligation and downloads the certificate.
    bank.goto("/holdings")
    journey.shot(bank, "holdings")
    bank.fill("#quantity", "100")
    bank.fill("#beneficiary", "Gemeente Rotterdam")
    bank.select_option("#purpose", "csrd_report")
    bank.fill("#contract_reference", "ROT-2027-0042")
    bank.get_by_role("button", name="Retire").click()
    expect(bank.get_by_text(re.compile("can never be used, retired again"))).to_be_visible()
    journey.shot(bank, "retirement-review")
    bank.get_by_role("button", name="Retire the tokens").click()
    expect(bank.get_by_text("ROT-2027-0042")).to_be_visible()
    journey.shot(bank, "retirement")
    link = bank.get_by_role("link", name=re.compile("certificate", re.IGNORECASE)).first
    certificate = bank.request.get(link.get_attribute("href"))  # as the browser fetches it
    assert certificate.headers["content-type"] == "application/pdf"
    assert certificate.body().startswith(b"%PDF-")
    (screenshots / "certificate.pdf").write_bytes(certificate.body())

    # The public registry shows the retirement to anyone.
    public = journey.person()
    public.goto("/registry")
    journey.shot(public, "registry")
    expect(
        public.get_by_text(re.compile(rf"SOM-P{project_id:06d}-{end.year}-0000001"))
    ).to_be_visible()
    expect(public.get_by_text("retired").first).to_be_visible()

    # The bank's dashboard and impact report agree with the ledger and the registry.
    bank.goto("/dashboard")
    expect(bank.locator("svg.chart").first).to_be_visible()
    journey.shot(bank, "buyer-dashboard")
    report = read_csv(bank.request.get("/impact-report.csv").text())
    pdf = bank.request.get("/impact-report.pdf").body()
    (screenshots / "impact-report.pdf").write_bytes(pdf)
    session.rollback()
    organisation_id = session.scalars(
        select(User.organisation_id).where(User.email == "lotte@havenstad.example")
    ).one()
    pledges = select(Pledge.id).where(Pledge.organisation_id == organisation_id)
    paid = ledger_total(
        session,
        "payment",
        session.scalars(select(Payment.id).where(Payment.pledge_id.in_(pledges))),
    )
    refunded = ledger_total(
        session, "refund", session.scalars(select(Refund.id).where(Refund.pledge_id.in_(pledges)))
    )
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    held, retired = (
        session.scalar(
            select(func.coalesce(func.sum(size), 0)).where(
                TokenBlock.holder_id == organisation_id, TokenBlock.status == status
            )
        )
        for status in (BlockStatus.ISSUED, BlockStatus.RETIRED)
    )
    summary = {row["figure"]: row["value"] for row in report["summary"]}
    assert summary["paid (EUR)"] == f"{paid / 100:.2f}"
    assert summary["refunded (EUR)"] == f"{refunded / 100:.2f}"
    assert (summary["tokens held"], summary["tokens retired"]) == (str(held), str(retired))
    assert retired == 100 and paid > 0 and refunded > 0
    text = " ".join(pypdfium2.PdfDocument(pdf)[0].get_textpage().get_text_range().split())
    for figure in (_euros(paid), _euros(refunded), "ROT-2027-0042"):
        assert figure in text, (figure, text)
    assert journey.shots >= 13


def _euros(cents: int) -> str:
    """An amount as the English pages and the PDF write it: €41,238.58 (PostgreSQL sums
    come back as Decimal)."""
    cents = int(cents)
    return f"€{cents // 100:,}.{cents % 100:02d}"


def _instant(day: date) -> datetime:
    """00:00 in Amsterdam on ``day`` and a little after: the sweeps' day has begun."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=1)


def _first_outcome(page: Page, prefix: str = "figure-") -> int:
    field_id = page.locator(f"input[id^='{prefix}']").first.get_attribute("id")
    return int(field_id.removeprefix(prefix))
