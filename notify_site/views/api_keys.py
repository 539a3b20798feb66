"""``/api-keys``: create, list and revoke the keys of the JSON API (SPEC 4.3).

Creating a key answers with a redirect to ``/api-keys`` (POST-redirect-GET: reloading the page
cannot create a second key), which shows the new key once. The key waits for that page
encrypted on the server (services/api_keys.py); the session carries only the random slot id,
never the key: the session cookie is signed, not encrypted, so anyone holding the browser's
cookie could read what it holds. The page is ``Cache-Control: no-store`` so no cache keeps a
copy.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from wtforms import StringField
from wtforms.validators import DataRequired

from notify_site.forms import REQUIRED, ConfirmForm, at_most, plain_text
from notify_site.services import api_keys as service
from notify_site.web.forms import BaseForm

bp = Blueprint("api_keys", __name__)

# The session key holding the slot of a key waiting to be shown.
NEW_KEY_SLOT = "new_api_key_slot"


class ApiKeyForm(BaseForm):
    name = StringField(
        _l("Name"),
        description=_l("What the key is for, e.g. “CI alerts”. Only you see it."),
        validators=[DataRequired(REQUIRED), at_most(service.NAME_MAX_CHARS), plain_text],
        filters=[lambda value: value.strip() if value else value],
    )


def _page(form: ApiKeyForm, *, new_key: str | None = None, status: int = 200):
    body = render_template(
        "api_keys/index.html",
        keys=service.list_api_keys(current_user),
        form=form,
        action_form=ConfirmForm(),
        new_key=new_key,
    )
    return body, status, {"Cache-Control": "no-store"}


@bp.get("/api-keys")
@login_required
def index():
    new_key = service.take_key_to_show(current_user, session.pop(NEW_KEY_SLOT, None))
    return _page(ApiKeyForm(), new_key=new_key)


@bp.post("/api-keys")
@login_required
def create():
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        _, slot = service.create_api_key_to_show(current_user, form.name.data)
    except service.ApiKeyError as error:
        form.name.errors.append(str(error))
        return _page(form, status=400)
    session[NEW_KEY_SLOT] = slot
    return redirect(url_for("api_keys.index"), 303)


@bp.post("/api-keys/<int:key_id>/revoke")
@login_required
def revoke(key_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        api_key = service.revoke_api_key(current_user, key_id)
    except service.ApiKeyNotFoundError:
        abort(404)
    flash(
        _("The key “%(name)s” (%(prefix)s…) is revoked.", name=api_key.name, prefix=api_key.prefix),
        "success",
    )
    return redirect(url_for("api_keys.index"))
