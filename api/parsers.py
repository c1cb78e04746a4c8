"""The API's JSON parser: a body is text the database and the response can hold.

JSON can spell what UTF-8 cannot (a lone surrogate, "\\ud800") and nest deeper
than Python recurses; either would fail far from the input, as a 500, so both are
a 400 here, with the path of the value at fault. NUL passes: each field refuses it
with its own message.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from vendors.payloads import MAX_DEPTH, json_fault


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
        fault = json_fault(data, nul_allowed=True)
        if fault is not None:
            raise ParseError(f"JSON parse error - {fault}")
        return data
