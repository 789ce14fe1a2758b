"""The API's one JSON parser: DRF's, refusing bodies nested deeper than any operation needs.

Python's JSON decoder recurses once per ``[`` or ``{``: a body of 100,000 brackets would end in
a RecursionError (a 500) wherever ``request.data`` is first read. This parser turns that, and
any nesting deeper than MAX_DEPTH, into a ParseError, which the exception handler answers as a
400 in the API's error format. It is the default parser (settings ``DEFAULT_PARSER_CLASSES``),
so every endpoint, the unauthenticated token endpoint included, reads bodies through it.
The body's size is bounded before parsing by Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The deepest request body an operation documents is a list of objects in an object (3 levels);
# anything far deeper is not a request to any of them.
MAX_DEPTH = 32


class JSONDepthError(ValueError):
    pass


def json_depth_check(data, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise JSONDepthError if ``data`` (parsed JSON) nests lists and objects deeper than ``max_depth``."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise JSONDepthError(f"JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser with a nesting limit; too deep is a 400 ``parse_error``, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
            json_depth_check(data)
        except (RecursionError, JSONDepthError):
            raise ParseError(f"JSON parse error - the body is nested deeper than {MAX_DEPTH} levels.") from None
        return data
