"""Domain errors: each has a machine code and a message a person can read.

Services raise them and change nothing; pages show the message, the API maps the class to a
status code (400 invalid input, 403 not allowed, 404 not found, 409 state conflict).
"""


class ApplicationError(Exception):
    """A refusal by the domain. ``code`` is stable for programs, ``message`` is for people."""

    http_status = 400
    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInput(ApplicationError):
    """The request itself is wrong (bad amount, unknown currency, missing reason)."""

    http_status = 400
    default_code = "invalid"


class NotAllowed(ApplicationError):
    """The caller may not do this (backing your own campaign, editing someone else's)."""

    http_status = 403
    default_code = "not_allowed"


class NotFound(ApplicationError):
    """The object does not exist, or the caller may not know that it does."""

    http_status = 404
    default_code = "not_found"


class Conflict(ApplicationError):
    """The request is well formed but the current state refuses it (sold out, not live)."""

    http_status = 409
    default_code = "conflict"


class PaymentDeclined(ApplicationError):
    """The payment gateway declined the charge; ``code`` says why (e.g. card_declined)."""

    http_status = 402
    default_code = "payment_declined"


class PaymentUnavailable(ApplicationError):
    """The payment gateway failed transiently; the same request may be retried."""

    http_status = 503
    default_code = "payment_processing_error"
