"""API: holdings, retirements, and the public token registry."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role, Scope
from marketplace.api.auth import authenticated, current_api_user
from marketplace.claims.trail import claim_trail
from marketplace.core import idempotency as idempotent
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.schemas import (
    PageArgsSchema,
    SingleLine,
    Text,
    WholeNumber,
    page_schema,
    row_id,
)
from marketplace.extensions import db
from marketplace.obligations import services as obligations
from marketplace.projects.models import Project
from marketplace.registry import services
from marketplace.registry.models import BlockStatus, Claim, Purpose, Retirement

blp = Blueprint("registry_api", __name__, url_prefix="/api/v1", description="Tokens and registry")


class HoldingSchema(ma.Schema):
    serial_block = ma.fields.String(required=True)
    project_id = ma.fields.Integer(required=True)
    vintage = ma.fields.Integer(required=True)
    quantity = ma.fields.Integer(required=True)


class RetirementInSchema(ma.Schema):
    project_id = row_id(required=True)
    quantity = WholeNumber(required=True, validate=validate.Range(min=1, max=10**9))
    beneficiary = SingleLine(required=True, validate=validate.Length(min=1, max=200))
    purpose = ma.fields.Enum(Purpose, by_value=True, required=True)
    claim = ma.fields.Enum(Claim, by_value=True, required=True)
    contract_reference = SingleLine(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": "for sroi_obligation, the obligation's contract is used"},
    )
    obligation_id = row_id(
        load_default=None,
        metadata={"description": "with purpose sroi_obligation: an accepted obligation of yours"},
    )
    note = Text(load_default="", validate=validate.Length(max=2000))


class RetirementCreatedSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    serial_blocks = ma.fields.List(ma.fields.String(), required=True)
    quantity = ma.fields.Integer(required=True)
    credit_cents = ma.fields.Integer(
        allow_none=True,
        required=True,
        metadata={"description": "what a social-return retirement is credited (else null)"},
    )
    certificate_url = ma.fields.String(required=True)
    public_url = ma.fields.String(required=True)


class RetirementOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    serial_blocks = ma.fields.List(ma.fields.String(), required=True)
    quantity = ma.fields.Integer(required=True)
    project = ma.fields.Dict(required=True, metadata={"example": {"id": 42, "title": "..."}})
    beneficiary = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    claim = ma.fields.String(required=True)
    contract_reference = ma.fields.String()
    retired_at = ma.fields.AwareDateTime(required=True)


class BlockSchema(ma.Schema):
    serial_block = ma.fields.String(required=True)
    project_id = ma.fields.Integer(required=True)
    vintage = ma.fields.Integer(required=True)
    quantity = ma.fields.Integer(required=True)
    holder = ma.fields.String(required=True, metadata={"example": "private holder"})
    status = ma.fields.String(required=True, metadata={"example": "issued"})


BlockPageSchema = page_schema(BlockSchema, "BlockPage")


class BlockQuerySchema(PageArgsSchema):
    serial = SingleLine(
        validate=validate.Length(max=40),
        metadata={"description": "a serial or serial block, e.g. SOM-P000042-2027-0000017"},
    )
    project_id = row_id()
    status = ma.fields.Enum(BlockStatus, by_value=True)
    q = SingleLine(
        validate=validate.Length(max=100),
        metadata={
            "description": "words of a project's title, a public holder's name or a "
            "retirement's beneficiary"
        },
    )


def block_body(block) -> dict[str, Any]:
    return {
        "serial_block": block.serial,
        "project_id": block.project_id,
        "vintage": block.vintage,
        "quantity": block.quantity,
    }


def public_block_body(block, holder) -> dict[str, Any]:
    """A block in the public registry: its holder as the registry names it (a holder
    None is the buffer pool) and its status."""
    return block_body(block) | {
        "holder": services.holder_name(holder),
        "status": block.status.value,
    }


def created_body(retirement: Retirement) -> dict[str, Any]:
    credit = obligations.credit_of(db.session, retirement.id)
    return {
        "id": retirement.id,
        "serial_blocks": [b.serial for b in retirement.blocks],
        "quantity": retirement.quantity,
        "credit_cents": credit.credit_cents if credit else None,
        "certificate_url": url_for(
            "registry.certificate", retirement_id=retirement.id, _external=True
        ),
        "public_url": url_for("registry.retirement", retirement_id=retirement.id, _external=True),
    }


@blp.route("/holdings")
class Holdings(MethodView):
    @authenticated(blp, Role.BUYER)
    @blp.response(200, HoldingSchema(many=True))
    def get(self):
        """Your organisation's tokens not yet retired, by project and serial."""
        return [block_body(b) for b in services.holdings(db.session, current_api_user())]


@blp.route("/retirements")
class Retirements(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY)
    @blp.arguments(RetirementInSchema)
    @blp.response(201, RetirementCreatedSchema)
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="insufficient_tokens, frozen, retired_concurrently, idempotency_conflict",
    )
    @blp.doc(parameters=[idempotent.OPENAPI_PARAMETER])
    def post(self, data):
        """Retire tokens against a claim: final, with a public page and a certificate. For
        a social-return obligation, name it (``obligation_id``): the retirement is credited
        ``tokens * token price * the authority's factor`` toward it."""
        user = current_api_user()
        obligation_id = data.pop("obligation_id")
        retirement = obligations.retire(
            db.session,
            user,
            services.RetirementInput(**data),
            obligation_id=obligation_id,
            now=now(),
            idempotency=idempotent.from_request(user.id),
            respond=created_body,
        )
        return created_body(retirement)


class TransferInSchema(ma.Schema):
    project_id = row_id(required=True)
    quantity = WholeNumber(required=True, validate=validate.Range(min=1, max=10**9))
    to_organisation_id = row_id(required=True)
    note = Text(load_default="", validate=validate.Length(max=2000))


class TransferCreatedSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    serial_blocks = ma.fields.List(ma.fields.String(), required=True)
    quantity = ma.fields.Integer(required=True)


def transfer_body(made) -> dict[str, Any]:
    return {
        "id": made.id,
        "serial_blocks": [r.serial for r in made.ranges],
        "quantity": made.quantity,
    }


@blp.route("/transfers")
class Transfers(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY)
    @blp.arguments(TransferInSchema)
    @blp.response(201, TransferCreatedSchema)
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="insufficient_tokens, frozen, transferred_concurrently, idempotency_conflict",
    )
    @blp.doc(parameters=[idempotent.OPENAPI_PARAMETER])
    def post(self, data):
        """Transfer unretired tokens of a project to another verified organisation: final,
        and public in the serials' history."""
        user = current_api_user()
        made = services.transfer(
            db.session,
            user,
            services.TransferInput(**data),
            now=now(),
            idempotency=idempotent.from_request(user.id),
            respond=transfer_body,
        )
        return transfer_body(made)


@blp.route("/registry/blocks")
class RegistryBlocks(MethodView):
    @blp.arguments(BlockQuerySchema, location="query")
    @blp.response(200, BlockPageSchema)
    def get(self, args):
        """Every issued and retired serial block (holders named only when they allow it)."""
        rows, total = services.registry_blocks(
            db.session,
            services.RegistryFilters(
                serial=args.get("serial"),
                project_id=args.get("project_id"),
                status=args.get("status"),
                text=args.get("q"),
                page=args["page"],
                per_page=args["per_page"],
            ),
        )
        return {
            "items": [public_block_body(b, h) for b, h in rows],
            "page": args["page"],
            "per_page": args["per_page"],
            "total": total,
        }


class TrailSchema(ma.Schema):
    """product.md "Claim trail": each part as stored; ``fingerprint`` is the SHA-256 of
    the rest as canonical JSON (keys sorted, no spaces)."""

    serial = ma.fields.String(required=True)
    block = ma.fields.Dict(required=True)
    retirement = ma.fields.Dict(allow_none=True, required=True)
    project = ma.fields.Dict(required=True)
    disputes = ma.fields.List(ma.fields.Dict(), required=True)
    settlement = ma.fields.Dict(allow_none=True, required=True)
    outcomes = ma.fields.List(ma.fields.Dict(), required=True)
    evidence = ma.fields.List(ma.fields.Dict(), required=True)
    evaluation = ma.fields.Dict(allow_none=True, required=True)
    valuation = ma.fields.Dict(allow_none=True, required=True)
    fingerprint = ma.fields.String(required=True)


@blp.route("/registry/serials/<string:serial>/trail")
class SerialTrail(MethodView):
    @blp.response(200, TrailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="not one serial")
    def get(self, serial):
        """The claim trail of one serial, public, with its fingerprint."""
        return claim_trail(db.session, serial[:100])


@blp.route("/registry/retirements/<int:retirement_id>")
class OneRetirement(MethodView):
    @blp.response(200, RetirementOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, retirement_id):
        """One retirement, public."""
        found = services.get_retirement(db.session, retirement_id)
        project = db.session.get_one(Project, found.project_id)
        return {
            "id": found.id,
            "serial_blocks": [b.serial for b in found.blocks],
            "quantity": found.quantity,
            "project": {"id": project.id, "title": project.title, "reference": project.reference},
            "beneficiary": found.beneficiary,
            "purpose": found.purpose.value,
            "claim": found.claim.value,
            "contract_reference": found.contract_reference,
            "retired_at": found.retired_at,
        }
