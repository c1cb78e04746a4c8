"""The API's JSON parser: a body is text the database and the response can hold.

JSON can spell what UTF-8 cannot (a lone surrogate, "\\ud800") and nest deeper
than Python recurses; either would fail far from the input, as a 500, so both are
a 400 here, with the path of the value at fault.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body the API takes (a rule tree nests at most
# CRM_SEGMENT_MAX_DEPTH), and far below Python's recursion limit.
MAX_DEPTH = 64


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fault(data: object) -> str | None:
    """Why the parsed body cannot be used, naming the value's path; None if it can."""
    stack = [(data, "body", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not _is_text(value):
                return f"{path} holds a lone surrogate, which is not text"
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            return f"{path} nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    return f"{path} has a key with a lone surrogate, which is not text"
                stack.append((item, f"{path}.{key}", depth + 1))
        else:
            stack.extend(
                (item, f"{path}[{index}]", depth + 1)
                for index, item in enumerate(value)
            )
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing too deep a nesting and text that is not Unicode
    with a 400 (ParseError) rather than an exception."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(
                f"JSON parse error - nests deeper than {MAX_DEPTH} levels"
            ) from error
        fault = _fault(data)
        if fault is not None:
            raise ParseError(f"JSON parse error - {fault}")
        return data
