"""The retirement certificate: one A4 page in PDF, with a QR code of its public page."""

from __future__ import annotations

from io import BytesIO

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from marketplace.registry.models import Retirement

PURPOSES = {
    "sroi_obligation": "Social-return obligation (public procurement)",
    "csr_voluntary": "Voluntary CSR claim",
    "csrd_report": "CSRD report",
}


def render(
    retirement: Retirement,
    *,
    project_title: str,
    project_reference: str,
    outcomes: list[tuple[str, int, int, str]],
    holder: str,
    public_url: str,
) -> bytes:
    """The certificate as PDF bytes. ``outcomes``: (name, verified, target, unit) per line."""
    buffer = BytesIO()
    pdf = Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Retirement certificate {retirement.id}")
    pdf.setAuthor("Social Outcomes Marketplace")
    width, height = A4
    left, y = 20 * mm, height - 25 * mm

    def line(text: str, size: int = 10, gap: float = 6 * mm, bold: bool = False) -> None:
        nonlocal y
        pdf.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        pdf.drawString(left, y, text)
        y -= gap

    pdf.setFillColorRGB(0.05, 0.3, 0.25)
    line("Social Outcomes Marketplace", 11, 8 * mm, bold=True)
    pdf.setFillColorRGB(0, 0, 0)
    line("Certificate of retirement of impact tokens", 18, 12 * mm, bold=True)
    line(f"Retirement no. {retirement.id}, {retirement.retired_at:%d %B %Y}", 11, 10 * mm)
    line(
        f"{retirement.quantity} verified impact tokens of {project_reference} {project_title}",
        11,
        7 * mm,
    )
    line(f"retired on behalf of: {retirement.beneficiary}", 11, 7 * mm, bold=True)
    line(f"Purpose: {PURPOSES[retirement.purpose.value]}", 10)
    line(f"Claim: {retirement.claim.value}", 10)
    if retirement.contract_reference:
        line(f"Contract: {retirement.contract_reference}", 10)
    line(f"Holder: {holder}", 10, 10 * mm)
    line("Serial numbers", 11, 6 * mm, bold=True)
    for block in retirement.blocks:
        line(f"{block.serial}  ({block.quantity} tokens)", 10, 5 * mm)
    y -= 4 * mm
    line("Verified outcomes of the project", 11, 6 * mm, bold=True)
    for name, verified, target, unit in outcomes:
        line(f"{name}: {verified} of {target} {unit} verified", 10, 5 * mm)
    if retirement.note:
        y -= 4 * mm
        line(f"Note: {retirement.note[:150]}", 9)

    qr = QrCodeWidget(public_url, barLevel="M")
    x0, y0, x1, y1 = qr.getBounds()
    side = 45 * mm
    drawing = Drawing(side, side, transform=[side / (x1 - x0), 0, 0, side / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, pdf, width - side - 20 * mm, 20 * mm)
    pdf.setFont("Helvetica", 9)
    pdf.drawString(left, 30 * mm, "Check this retirement in the public registry:")
    pdf.drawString(left, 25 * mm, public_url)
    pdf.drawString(
        left,
        18 * mm,
        "A serial is retired once only: this claim cannot be made again with these tokens.",
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
