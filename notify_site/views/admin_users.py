"""``/admin/users``: the accounts, for admins: list them, disable and enable them, give and
take the admin's rights, and read the audit of those changes (services/accounts.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from notify_site.forms import ConfirmForm
from notify_site.plain_text import read_number, text_problem
from notify_site.services import accounts

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")

SEARCH_MAX_CHARS = 64
MAX_PAGE = 1_000_000


@bp.before_request
@login_required
def require_admin():
    if not current_user.is_admin:
        abort(403, _("This page is for admins only."))


def _state() -> dict[str, Any]:
    """The list's parameters, validated, without the defaults (for links and redirects)."""
    state: dict[str, Any] = {}
    search = request.args.get("q", "").strip()[:SEARCH_MAX_CHARS]
    if search and text_problem(search) is None:  # no user name holds a control character
        state["q"] = search
    page = read_number(request.args.get("page", ""), MAX_PAGE)
    if page is not None and page > 1:
        state["page"] = page
    return state


@bp.get("")
def index():
    state = _state()

    def page_url(param: str, number: int, anchor: str) -> str:
        args = {**state, param: number}
        if number <= 1:
            args.pop(param)
        return url_for("admin_users.index", **args, _anchor=anchor)

    return render_template(
        "admin/users.html",
        state=state,
        users=accounts.list_users(search=state.get("q"), page=state.get("page", 1)),
        events=accounts.recent_events(),
        page_url=page_url,
        action_form=ConfirmForm(),
    )


def _act(user_id: int, change, done: str) -> Any:
    """Run one change to an account; ``done`` is the flash, with %(name)s for its name."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        user = change(current_user._get_current_object(), user_id)
    except accounts.UnknownUserError as error:
        abort(404, str(error))
    except accounts.AdminRuleError as error:
        flash(str(error), "error")
    else:
        flash(done % {"name": user.username}, "success")
    return redirect(url_for("admin_users.index", **_state(), _anchor="users"))


@bp.post("/<int:user_id>/disable")
def disable(user_id: int):
    return _act(
        user_id,
        lambda admin, target: accounts.set_disabled(admin, target, True),
        _("“%(name)s” is disabled and signed out everywhere."),
    )


@bp.post("/<int:user_id>/enable")
def enable(user_id: int):
    return _act(
        user_id,
        lambda admin, target: accounts.set_disabled(admin, target, False),
        _("“%(name)s” is enabled again."),
    )


@bp.post("/<int:user_id>/make-admin")
def make_admin(user_id: int):
    return _act(
        user_id,
        lambda admin, target: accounts.set_admin(admin, target, True),
        _("“%(name)s” is now an admin."),
    )


@bp.post("/<int:user_id>/remove-admin")
def remove_admin(user_id: int):
    return _act(
        user_id,
        lambda admin, target: accounts.set_admin(admin, target, False),
        _("“%(name)s” is no longer an admin."),
    )
