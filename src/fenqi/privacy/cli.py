"""`fenqi staff ...`: create, list, disable staff users; show what each role may do.

The password never appears on the command line (it would be visible in `ps` and shell history):
it comes from FENQI_STAFF_PASSWORD, for scripts, or from a hidden, confirmed prompt.
"""

from __future__ import annotations

import os

import typer

from fenqi.cli_support import clean_errors, context, print_json, table_console

app = typer.Typer(no_args_is_help=True, help="Staff users and roles.")

PASSWORD_ENV = "FENQI_STAFF_PASSWORD"


def _password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
@clean_errors
def create_cmd(
    username: str = typer.Option(..., help="Login name: 3-64 chars of a-z 0-9 . _ -"),
    role: str = typer.Option(
        ..., help="admin, risk_analyst, collector, finance, compliance, support"
    ),
    display_name: str = typer.Option("", "--display-name", help="Name shown in the console."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a staff user; the password comes from FENQI_STAFF_PASSWORD or a hidden prompt."""
    from fenqi.privacy import audit
    from fenqi.privacy.staff import check_password, create_staff, normalize_username, parse_role

    parse_role(role)  # refuse a bad role or name before asking for a password
    name = normalize_username(username)
    password = _password()
    check_password(password, name)
    with context() as ctx, ctx.engine.begin() as conn:
        user = create_staff(conn, ctx.clock, name, password, role, display_name)
        audit.record(
            conn,
            ctx.clock,
            actor_kind=audit.ActorKind.SYSTEM,
            actor_id="cli",
            action="staff.create",
            target_kind="staff_user",
            target_id=user.id,
            detail={"username": user.username, "role": user.role.value},
        )
    if as_json:
        print_json(user.to_dict())
    else:
        typer.echo(f"created staff user {user.username} (id {user.id}, role {user.role.value})")


@app.command("list")
@clean_errors
def list_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every staff user with role and status (never the password hash)."""
    from fenqi.privacy.staff import STAFF_LIST_MAX, StaffUser, list_staff

    users: list[StaffUser] = []
    with context() as ctx, ctx.engine.connect() as conn:
        while True:
            page = list_staff(conn, limit=STAFF_LIST_MAX, after_id=users[-1].id if users else 0)
            users.extend(page)
            if len(page) < STAFF_LIST_MAX:
                break
    if as_json:
        print_json([u.to_dict() for u in users])
        return
    from rich.table import Table

    table = Table("id", "username", "role", "display name", "disabled", "created at")
    for u in users:
        table.add_row(
            str(u.id),
            u.username,
            u.role.value,
            u.display_name,
            "yes" if u.disabled else "no",
            u.created_at.isoformat(timespec="seconds"),
        )
    table_console().print(table)


@app.command("disable")
@clean_errors
def disable_cmd(
    username: str = typer.Option(...),
    enable: bool = typer.Option(False, "--enable", help="Re-enable instead."),
) -> None:
    """Disable a staff user (they can no longer log in or act), or re-enable with --enable."""
    from fenqi.privacy import audit
    from fenqi.privacy.staff import set_disabled

    with context() as ctx, ctx.engine.begin() as conn:
        user = set_disabled(conn, username, not enable)
        audit.record(
            conn,
            ctx.clock,
            actor_kind=audit.ActorKind.SYSTEM,
            actor_id="cli",
            action="staff.enable" if enable else "staff.disable",
            target_kind="staff_user",
            target_id=user.id,
        )
    typer.echo(f"staff user {user.username} {'enabled' if enable else 'disabled'}")


@app.command("roles")
@clean_errors
def roles_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Each role and the permissions it grants."""
    from fenqi.privacy.staff import ROLE_PERMISSIONS

    data = {role.value: sorted(p.value for p in perms) for role, perms in ROLE_PERMISSIONS.items()}
    if as_json:
        print_json(data)
        return
    for role, perms in data.items():
        typer.echo(f"{role}: {', '.join(perms)}")
