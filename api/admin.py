"""``optbench-admin``: manage API tokens in the configured database (``OPTBENCH_DATABASE_URL``).

    optbench-admin token create NAME --scope read|write|admin   # the token is the LAST line
    optbench-admin token list                                   # id, name, scope, dates
    optbench-admin token revoke ID

The token is printed once and never stored (only its SHA-256 is), so a script can take it with
``optbench-admin token create ci --scope write | tail -n 1``. Exit status: 0 done, 1 the database
could not be used, 2 bad input (one message, no traceback).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from api.auth import create_token, list_tokens, revoke_token
from api.config import Settings, redact_url
from api.db import Database
from api.models import SCOPES
from api.services.experiments import iso

NAME_MAX = 200


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optbench-admin", description="Manage API tokens.")
    groups = parser.add_subparsers(dest="group", required=True)
    token = groups.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True
    )
    create = token.add_parser("create", help="create a token; it is the last line printed")
    create.add_argument("name", help="the owner: tokens of one name share their experiments")
    create.add_argument("--scope", choices=SCOPES, default="read")
    token.add_parser("list", help="list tokens (never the secrets)")
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"optbench-admin: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.action == "create" and not 1 <= len(args.name) <= NAME_MAX:
        return _fail(f"NAME must have 1 to {NAME_MAX} characters", 2)
    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail("invalid settings: " + "; ".join(e["msg"] for e in exc.errors()), 2)
    db = Database.from_settings(settings)
    try:
        with db.writer() as session:
            if args.action == "create":
                token = create_token(session, args.name, args.scope)
                session.commit()
                print(f"created a {args.scope!r} token for {args.name!r}; it is shown only once:")
                print(token)
            elif args.action == "list":
                for row in list_tokens(session):
                    state = f"revoked {iso(row.revoked_at)}" if row.revoked_at else "active"
                    print(f"{row.id}  {row.scope:5}  {iso(row.created_at)}  {state}  {row.name}")
            elif not revoke_token(session, args.id):
                return _fail(f"no active token with id {args.id[:64]!r}", 2)
            else:
                session.commit()
                print(f"revoked {args.id}")
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return _fail(
            f"the database at {redact_url(settings.resolved_database_url)} failed: {detail}", 1
        )
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
