"""Web plumbing shared by the site and the relay, owned by neither.

* :mod:`.forms` — the base form (CSRF, WTForms' messages translated);
* :mod:`.errors` — error texts for people, and the seam through which a house answers the
  errors raised on its own paths;
* ``templates/web/`` — layout pieces both houses' layouts include (the language switcher);
* ``static/`` — the base stylesheet both layouts load (colours, type, cards, forms, buttons,
  tables) and the script that submits the OAuth ``form_post`` answers.

:data:`bp` carries no routes: it only gives the templates and the static files a place
(``url_for("web.static", filename=...)``); ``create_app`` registers it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/web/static",
)
