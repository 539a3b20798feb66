"""Incoming webhooks (SPEC 8): Grafana, Alertmanager, Uptime Kuma, any JSON or plain text,
posted to a URL with a secret and sent to a person's LINE chats through the one send use case.

* :mod:`.manage` — a person's webhooks: create (the secret shown once), change, pause, give a
  new secret, delete; the history;
* :mod:`.receive` — a post: the secret, the format's reading, repeats, the send, the history;
* :mod:`.formats` — what each format reads from a post (pure): the event, the template's
  context, the group and state that repeats are told by;
* :mod:`.messages` — the built-in messages (pure), at most 1000 characters, "…and N more";
* :mod:`.templates` — a person's own template: Jinja2's sandbox, bounded in work and output;
* :mod:`.compose` — template or built-in message, with the fallback when a template fails;
* :mod:`.samples` — each format's sample post and starter template;
* :mod:`.text` — cleaning and cutting text as LINE takes it.
"""
