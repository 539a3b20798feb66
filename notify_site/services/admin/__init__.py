"""What the admin pages show and do (SPEC 4.5), one module per list or action:

- :mod:`.connections` — every connection, lowest calls remaining first;
- :mod:`.problems` — failed and stuck notifications;
- :mod:`.actions` — the two things an admin may do to a notification: retry it, cancel it;
- :mod:`.api_keys` — every API key and the volume it queued;
- :mod:`.chart` and :mod:`.overview` — deliveries and failures per hour, and the figures above;
- :mod:`.common` — counts that stop at a cap, and a row's owner.

Pages are :class:`notify_site.services.paging.Page`. Sized for 10,000 connections and
1,000,000 notifications: every list is one page of an indexed order (LIMIT/OFFSET along an
index), never a sort of the whole table, and a *deferred join*: the page's ids come from the
index alone, then only those rows are read and joined, so a deep page skips index entries,
not rows. Each module names the indexes its queries use.

The names below are the package's public face; the views use them from here.
"""

from notify_site.services.admin.actions import (
    CANCELLED_BY_ADMIN,
    NotificationActionError,
    cancel_notification,
    retry_notification,
)
from notify_site.services.admin.api_keys import API_KEYS_PER_PAGE, AdminApiKey, list_api_keys
from notify_site.services.admin.chart import (
    CHART_HOURS,
    HourlyChart,
    deliveries_per_hour,
    forget_closed_hours,
)
from notify_site.services.admin.common import COUNT_CAP, CappedCount, Owner
from notify_site.services.admin.connections import (
    CONNECTION_STATUSES,
    CONNECTIONS_PER_PAGE,
    AdminConnection,
    list_connections,
)
from notify_site.services.admin.overview import Summary, summary
from notify_site.services.admin.problems import (
    NOTIFICATION_LISTS,
    NOTIFICATIONS_PER_PAGE,
    STUCK_AFTER,
    AdminNotification,
    Problem,
    list_problem_notifications,
)
from notify_site.services.notifications import NotificationNotFoundError
from notify_site.services.paging import Page

__all__ = [
    "API_KEYS_PER_PAGE",
    "CANCELLED_BY_ADMIN",
    "CHART_HOURS",
    "CONNECTIONS_PER_PAGE",
    "CONNECTION_STATUSES",
    "COUNT_CAP",
    "NOTIFICATIONS_PER_PAGE",
    "NOTIFICATION_LISTS",
    "STUCK_AFTER",
    "AdminApiKey",
    "AdminConnection",
    "AdminNotification",
    "CappedCount",
    "HourlyChart",
    "NotificationActionError",
    "NotificationNotFoundError",
    "Owner",
    "Page",
    "Problem",
    "Summary",
    "cancel_notification",
    "deliveries_per_hour",
    "forget_closed_hours",
    "list_api_keys",
    "list_connections",
    "list_problem_notifications",
    "retry_notification",
    "summary",
]
