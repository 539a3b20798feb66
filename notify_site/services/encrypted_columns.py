"""The site's columns of key-ring ciphertexts, declared to the key ring's registry
(:mod:`notify_site.keyring`) so that ``flask rotate-keys`` moves them to the newest key:

* ``connections.token_ciphertext`` — each connection's Notify access token, bound to
  ``connection:<id>``;
* ``oauth_states.verifier_ciphertext`` — the PKCE verifier of a pending connect flow, bound to
  ``oauth-state:<state hash>``. These live an hour at most, but rows stay behind after they
  expire, and an old key can only be dropped from the ring once *nothing* is under it;
* ``line_login_states.secrets_ciphertext`` — the nonce and PKCE verifier of a pending
  "Sign in with LINE", bound to ``line-login-state:<state hash>``;
* ``api_key_reveals.key_ciphertext`` — a new API key waiting a few minutes for the page that
  shows it once, bound to ``api-key-reveal:<slot hash>``.
"""

from __future__ import annotations

from flask import Flask

from notify_site.keyring import EncryptedColumn, add_encrypted_column
from notify_site.models import ApiKeyReveal, Connection, LineLoginState, OAuthState
from notify_site.services.api_keys import reveal_context
from notify_site.services.connecting import verifier_context
from notify_site.services.connections import connection_context
from notify_site.services.line_accounts import secrets_context

SITE_COLUMNS = (
    EncryptedColumn(
        "connection tokens",
        Connection.id,
        Connection.token_ciphertext,
        connection_context,
        preserve=(Connection.updated_at,),
    ),
    EncryptedColumn(
        "OAuth state verifiers",
        OAuthState.state_hash,
        OAuthState.verifier_ciphertext,
        verifier_context,
    ),
    EncryptedColumn(
        "LINE sign-in nonces and verifiers",
        LineLoginState.state_hash,
        LineLoginState.secrets_ciphertext,
        secrets_context,
    ),
    EncryptedColumn(
        "new API keys waiting to be shown",
        ApiKeyReveal.slot_hash,
        ApiKeyReveal.key_ciphertext,
        reveal_context,
    ),
)


def init_app(app: Flask) -> None:
    for column in SITE_COLUMNS:
        add_encrypted_column(app, column)
