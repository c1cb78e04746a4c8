"""CSV cells a spreadsheet shows as text: OWASP's formula escape, and its inverse.

A spreadsheet runs a cell that begins with "=", "+", "-", "@", tab or carriage
return as a formula (`=HYPERLINK(...)`, DDE commands), so every CSV the product
writes prefixes such a cell with a single quote, which makes it text. Numbers and
lists of E.164 phones ("-3.5", "+14155550123; +12125550100") are left alone: they
hold no reference or function, and a quote would only spoil them. The importer
removes the quote again, so an exported file imports back to the same leads.
"""

import re

# Cells that start with a formula character, after any quotes an escape added.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
_INERT = re.compile(r"[+-]?\d+(?:\.\d+)?(?:; \+\d+)*")


def formula_escaped(text: str) -> str:
    """The cell as written to a CSV: quoted when a spreadsheet would run it."""
    if _FORMULA.match(text) and not _INERT.fullmatch(text):
        return "'" + text
    return text


def formula_unescaped(text: str) -> str:
    """The cell as formula_escaped was given it (text nothing escaped is kept)."""
    return text[1:] if _ESCAPED.match(text) else text
