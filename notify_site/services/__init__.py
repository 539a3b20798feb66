"""Services own the business rules and the transactions; views call them and map their errors."""


class ServiceError(Exception):
    """Base of every domain error a service raises; the message is safe to show to the user."""
