"""API: register, API tokens, the current user, and the admin's user list."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts import account_rules
from marketplace.accounts.models import Role
from marketplace.accounts.profile import verification_link, verify_email
from marketplace.accounts.schemas import (
    CredentialsSchema,
    NewTokenSchema,
    RegistrationSchema,
    TokenSchema,
    UserSchema,
    VerificationSchema,
)
from marketplace.accounts.services import (
    InvalidCredentials,
    NewUser,
    authenticate,
    issue_api_token,
    list_api_tokens,
    list_users,
    register,
    revoke_api_token,
)
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core.clock import now
from marketplace.core.schemas import PageArgsSchema, page_schema
from marketplace.extensions import db
from marketplace.notifications import notices
from marketplace.notifications.account_mail import send_link

blp = Blueprint("accounts_api", __name__, url_prefix="/api/v1", description="Accounts")

UserPageSchema = page_schema(UserSchema, "UserPage")


@blp.route("/auth/register")
class Register(MethodView):
    @blp.arguments(RegistrationSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, response="CONFLICT", description="email_taken or organisation_taken")
    def post(self, data):
        """Register an entrepreneur or buyer, with a new organisation.

        A link to confirm the address is e-mailed; until it is opened the account may
        read but not submit a project or pledge (403 ``email_unverified``)."""
        user = register(
            db.session, account_rules(), NewUser(**{**data, "role": Role(data["role"])}), now=now()
        )
        link, secret = verification_link(db.session, user, now=now())
        db.session.commit()
        # A mail that cannot go now is logged; the person asks again from the page.
        send_link(
            current_app.extensions["settings"],
            link.purpose,
            user.email,
            secret,
            user.language or "en",
            name=user.name,
        )
        return user


@blp.route("/auth/tokens")
class Tokens(MethodView):
    @blp.arguments(CredentialsSchema)
    @blp.response(201, NewTokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED", description="invalid_credentials")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="too many failed attempts")
    def post(self, data):
        """Exchange an e-mail address and password for an API token."""
        try:
            user = authenticate(
                db.session,
                account_rules(),
                data["email"],
                data["password"],
                remote_addr=request.remote_addr or "",
                now=now(),
            )
        except InvalidCredentials as refused:
            notices.many_failed_logins(db.session, refused.warning, now=now())
            db.session.commit()  # keep the failed attempt for the throttle
            raise
        token, secret = issue_api_token(
            db.session,
            user,
            data["name"],
            now=now(),
            scopes=data["scopes"],
            expires_in_days=data["expires_in_days"],
        )
        return {
            "id": token.id,
            "name": token.name,
            "token": secret,  # shown once, in this answer
            "created_at": token.created_at,
            "scope_list": token.scope_list,
            "expires_at": token.expires_at,
        }

    @authenticated(blp)
    @blp.response(200, TokenSchema(many=True))
    def get(self):
        """List your API tokens (without their secrets)."""
        return list_api_tokens(db.session, current_api_user())


@blp.route("/auth/tokens/<int:token_id>")
class TokenItem(MethodView):
    @authenticated(blp)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, token_id):
        """Revoke one of your API tokens; it stops working at once."""
        revoke_api_token(db.session, current_api_user(), token_id, now=now())


@blp.route("/auth/verify")
class Verify(MethodView):
    @blp.arguments(VerificationSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(409, response="CONFLICT", description="link_closed")
    def post(self, data):
        """Confirm an address with the secret of the link e-mailed to it (what opening the
        link does, for an app that reads the e-mail itself)."""
        return verify_email(db.session, data["token"], now=now())


@blp.route("/me")
class Me(MethodView):
    @authenticated(blp)
    @blp.response(200, UserSchema)
    def get(self):
        """The user the token belongs to."""
        return current_api_user()


@blp.route("/users")
class Users(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args):
        """All users, for admins."""
        users, total = list_users(db.session, page=args["page"], per_page=args["per_page"])
        return {"items": users, "page": args["page"], "per_page": args["per_page"], "total": total}
