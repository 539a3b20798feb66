"""The JSON API v1 blueprint; the code lives in :mod:`notify_site.api`."""

from notify_site.api.views import bp

__all__ = ["bp"]
