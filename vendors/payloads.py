"""Reading callback bodies: JSON whose every string the database can store.

JSON can spell what a Postgres text or jsonb column cannot hold (NUL, "\\u0000")
and what UTF-8 cannot encode (a lone surrogate, "\\ud800"), and can nest deeper
than Python recurses. A callback carrying any of these is refused as a whole,
with the path of the value at fault, before anything is stored.
"""

import json
from typing import Any

from vendors.base import InvalidPayload

# Far deeper than any vendor's callback, and far below Python's recursion limit.
MAX_DEPTH = 64


def _text_fault(value: str, *, nul_allowed: bool) -> str | None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate, which is not text"
    if not nul_allowed and "\x00" in value:
        return "a NUL character"
    return None


def json_fault(
    data: Any, *, root: str = "body", nul_allowed: bool = False
) -> str | None:
    """Why parsed JSON cannot be stored, naming the value's path; None if it can."""
    stack = [(data, root, 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            fault = _text_fault(value, nul_allowed=nul_allowed)
            if fault:
                return f"{path} holds {fault}"
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            return f"{path} nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                fault = _text_fault(key, nul_allowed=nul_allowed)
                if fault:
                    return f"{path} has a key holding {fault}"
                stack.append((item, f"{path}.{key}", depth + 1))
        else:
            stack.extend(
                (item, f"{path}[{index}]", depth + 1)
                for index, item in enumerate(value)
            )
    return None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def read_json(body: bytes) -> Any:
    """The callback's JSON; InvalidPayload if it is not JSON the database can store
    (NaN and Infinity, which Python reads by default, are not JSON either)."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidPayload(f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError too
        raise InvalidPayload(f"not JSON: {error}") from None
    fault = json_fault(data)
    if fault is not None:
        raise InvalidPayload(fault)
    return data
