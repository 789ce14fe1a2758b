"""The REST API's shared machinery: error format, idempotency, throttles, schema helpers, routes.

The endpoints themselves live beside their domain, in each app's ``api.py``.
"""
