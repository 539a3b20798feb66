"""Channel mode: the relay delivers through a LINE Messaging API channel (issue 7).

Without a channel configured nothing here runs and the relay stays in sandbox mode.

Modules: ``channel`` (settings, channel access tokens, the SDK clients), ``webhook`` (signature
check and storing events), ``events`` (processing them: the chat registry and pairing codes),
``pairing`` (one-time codes on the consent page), ``push`` (the push outbox, on the outbox
machinery the site's delivery shares, notify_site/outbox.py, and its worker job),
``push_outcome`` (what LINE's answer to a push means: pure), ``quota`` (the month's quota and
consumption).
"""
