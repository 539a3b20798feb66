"""``/webhooks``: a person's incoming webhooks (SPEC 8). Thin: forms in, one service call,
its errors beside the fields or in a flash.

Making a webhook, or giving it a new secret, redirects to its page (POST-redirect-GET), which
shows the URL with its secret once: the secret waits for that page encrypted on the server,
as a new API key does (services/api_keys.py); the session holds only the slot's id. The page
is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from notify_site.forms import ConfirmForm
from notify_site.forms_webhooks import FORMAT_NAMES, WebhookCreateForm, WebhookSettingsForm
from notify_site.i18n import LANGUAGES
from notify_site.models import Webhook
from notify_site.security import external_url
from notify_site.services import notifications
from notify_site.services.webhooks import compose, manage, receive, samples, templates
from notify_site.services.webhooks.formats import PayloadError

bp = Blueprint("webhooks", __name__)

# The session key holding {"id": webhook id, "slot": slot of its new secret}.
NEW_URL_SLOT = "new_webhook_url_slot"
NO_STORE = {"Cache-Control": "no-store"}


def _connections():
    return notifications.active_connections(current_user)


def _page_locale() -> str:
    locale = str(get_locale() or "en")
    return locale if locale in LANGUAGES else "en"


# ---------------------------------------------------------------------------- the list


def _index(form: WebhookCreateForm, status: int = 200):
    body = render_template(
        "webhooks/index.html",
        webhooks=manage.list_webhooks(current_user),
        counts=manage.post_counts(current_user),
        connections=_connections(),
        form=form,
        format_names=FORMAT_NAMES,
    )
    return body, status


@bp.get("/webhooks")
@login_required
def index():
    form = WebhookCreateForm()
    form.locale.data = _page_locale()
    connections = _connections()
    if len(connections) == 1:
        form.connections.data = [connections[0].id]
    return _index(form)


@bp.post("/webhooks")
@login_required
def create():
    form = WebhookCreateForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    settings = manage.Settings(
        name=form.name.data, connections=form.connections.data, locale=form.locale.data
    )
    try:
        webhook, slot = manage.create_webhook_to_show(current_user, form.format.data, settings)
    except manage.WebhookError as error:
        _errors_beside_fields(form, error)
        return _index(form, 400)
    session[NEW_URL_SLOT] = {"id": webhook.id, "slot": slot}
    flash(_("The webhook “%(name)s” is ready.", name=webhook.name), "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook.id), 303)


def _errors_beside_fields(form, error: manage.WebhookError) -> None:
    """Each of the service's reasons beside its field (the form's names are the service's,
    but for the window, which the form asks in minutes)."""
    for name, reason in error.fields.items():
        field = form.dedupe_minutes if name == "dedupe_seconds" else getattr(form, name, None)
        if field is None:
            field = form.name
        field.errors = [*field.errors, reason]


# ---------------------------------------------------------------------------- one webhook


def _webhook(webhook_id: int) -> Webhook:
    try:
        return manage.get_webhook(current_user, webhook_id)
    except manage.WebhookNotFoundError:
        abort(404)


def _new_url(webhook: Webhook) -> str | None:
    """The URL with the secret, if this page is the one that shows it (once)."""
    waiting = session.get(NEW_URL_SLOT)
    if not isinstance(waiting, dict) or waiting.get("id") != webhook.id:
        return None
    session.pop(NEW_URL_SLOT, None)
    secret = manage.take_secret_to_show(current_user, waiting.get("slot"))
    if secret is None:
        return None
    return external_url("hooks.receive_with_secret", webhook_id=webhook.id, secret=secret)


def _detail(webhook: Webhook, form: WebhookSettingsForm, *, status: int = 200, preview=None):
    if preview is None:
        preview = _preview(webhook.format, webhook.template, webhook.locale)
    body = render_template(
        "webhooks/detail.html",
        webhook=webhook,
        form=form,
        action_form=ConfirmForm(),
        connections=_connections(),
        new_url=_new_url(webhook) if status == 200 else None,
        url=external_url("hooks.receive", webhook_id=webhook.id),
        history=manage.history(webhook),
        preview=preview,
        sample=samples.sample_text(webhook.format),
        starter=samples.STARTER_TEMPLATES[webhook.format],
        format_name=FORMAT_NAMES[webhook.format],
    )
    return body, status, NO_STORE


def _preview(format_name: str, template: str | None, locale: str) -> dict[str, str]:
    try:
        return {"text": compose.preview(format_name, template, locale)}
    except (templates.TemplateError, PayloadError) as error:
        return {"error": str(error)}


def _settings_form(webhook: Webhook) -> WebhookSettingsForm:
    form = WebhookSettingsForm()
    if not form.is_submitted():
        form.name.data = webhook.name
        form.connections.data = [connection.id for connection in webhook.connections]
        form.locale.data = webhook.locale
        form.dedupe_minutes.data = webhook.dedupe_seconds // 60
        form.template.data = webhook.template or ""
    return form


@bp.get("/webhooks/<int:webhook_id>")
@login_required
def detail(webhook_id: int):
    webhook = _webhook(webhook_id)
    return _detail(webhook, _settings_form(webhook))


@bp.post("/webhooks/<int:webhook_id>")
@login_required
def save(webhook_id: int):
    webhook = _webhook(webhook_id)
    form = _settings_form(webhook)
    template = form.template.data or None
    if request.form.get("action") == "preview":
        # Without script: the page again, with the template's preview and nothing saved.
        preview = _preview(webhook.format, template, form.locale.data or webhook.locale)
        return _detail(webhook, form, preview=preview)
    if not form.validate_on_submit():
        return _detail(webhook, form, status=400)
    settings = manage.Settings(
        name=form.name.data,
        connections=form.connections.data,
        template=template,
        locale=form.locale.data,
        dedupe_seconds=form.dedupe_minutes.data * 60,
    )
    try:
        manage.update_webhook(current_user, webhook.id, settings)
    except manage.WebhookError as error:
        _errors_beside_fields(form, error)
        return _detail(webhook, form, status=400)
    flash(_("Saved."), "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook.id), 303)


@bp.post("/webhooks/<int:webhook_id>/preview")
@login_required
def preview(webhook_id: int):
    """The live preview's JSON: what the format's sample becomes with the template posted."""
    webhook = _webhook(webhook_id)
    data = request.get_json(silent=True) or {}
    template = data.get("template") if isinstance(data.get("template"), str) else None
    locale = data.get("locale") if data.get("locale") in LANGUAGES else webhook.locale
    if template is not None and len(template) > templates.TEMPLATE_MAX_CHARS:
        abort(413)
    return jsonify(
        _preview(webhook.format, template if template and template.strip() else None, locale)
    )


@bp.post("/webhooks/<int:webhook_id>/test")
@login_required
def send_test(webhook_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    webhook = _webhook(webhook_id)
    try:
        received = receive.send_test(webhook)
    except (receive.WebhookPausedError, receive.NoActiveChatError, PayloadError) as error:
        flash(_("The test was not sent: %(reason)s", reason=str(error)), "error")
    else:
        count = len(received.notifications)
        flash(
            ngettext(
                "Test sent: %(num)s notification queued.",
                "Test sent: %(num)s notifications queued.",
                count,
            ),
            "success",
        )
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id, _anchor="history"), 303)


@bp.post("/webhooks/<int:webhook_id>/secret")
@login_required
def regenerate(webhook_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    _webhook(webhook_id)
    webhook, slot = manage.regenerate_secret_to_show(current_user, webhook_id)
    session[NEW_URL_SLOT] = {"id": webhook.id, "slot": slot}
    flash(_("New URL made: the old one no longer works."), "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id), 303)


@bp.post("/webhooks/<int:webhook_id>/pause")
@login_required
def pause(webhook_id: int):
    return _set_paused(webhook_id, paused=True)


@bp.post("/webhooks/<int:webhook_id>/resume")
@login_required
def resume(webhook_id: int):
    return _set_paused(webhook_id, paused=False)


def _set_paused(webhook_id: int, *, paused: bool):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    _webhook(webhook_id)
    webhook = manage.set_paused(current_user, webhook_id, paused)
    if paused:
        flash(_("“%(name)s” is paused: its posts are refused.", name=webhook.name), "success")
    else:
        flash(_("“%(name)s” sends again.", name=webhook.name), "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id), 303)


@bp.route("/webhooks/<int:webhook_id>/delete", methods=["GET", "POST"])
@login_required
def delete(webhook_id: int):
    webhook = _webhook(webhook_id)
    form = ConfirmForm()
    if request.method == "GET" or not form.validate_on_submit():
        status = 200 if request.method == "GET" else 400
        return render_template("webhooks/delete.html", webhook=webhook, form=form), status
    name = webhook.name
    manage.delete_webhook(current_user, webhook_id)
    flash(_("The webhook “%(name)s” is deleted.", name=name), "success")
    return redirect(url_for("webhooks.index"), 303)
