"""Hypothesis strategies for lead CSV files: any bytes, and bytes shaped like CSV.

Raw bytes alone rarely get past the header; the CSV-shaped files carry an
identifier column and cells known to be awkward (NUL, 5,000 digits, formulas,
stray quotes and line ends, values past their column's bound, bad UTF-8).
"""

from hypothesis import strategies as st

HEADERS = [
    "email",
    "phone",
    "id",
    "name",
    "first_name",
    "visits",
    "spend",
    "tags",
    "timezone",
    "opt_out",
    "note",
    "",
]
AWKWARD_CELLS = [
    "",
    "\x00",
    "a\x00b",
    "9" * 5000,
    "1" * 11,
    '=HYPERLINK("http://x","y")',
    "'=1+1",
    '"',
    '""',
    '"a,b"',
    "\r",
    "\n",
    "\r\n",
    "a,b;c\td",
    "ann@example.com",
    "a@@b",
    "+1 202 555 0147",
    "202 555 0147",
    "12",
    "America/New_York",
    "yes",
    "maybe",
    "$1,234.50",
    "-1",
    "1e400",
    "١٢",
    "x" * 1001,
    "t|" * 120,
    "\\N",
    "\t\\x",
]
cells = st.one_of(st.sampled_from(AWKWARD_CELLS), st.text(max_size=12))


@st.composite
def csv_shaped_bytes(draw) -> bytes:
    header = draw(
        st.lists(st.one_of(st.sampled_from(HEADERS), st.text(max_size=8)), max_size=6)
    )
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(st.lists(st.lists(cells, max_size=8), max_size=8))
    lines = [delimiter.join(["email", *header]), *map(delimiter.join, rows)]
    text = draw(st.sampled_from(["", "\ufeff"])) + end.join(lines)
    # Lone surrogates from st.text() become bytes that are not valid UTF-8.
    return text.encode("utf-8", "surrogatepass")


any_csv_bytes = st.one_of(st.binary(max_size=300), csv_shaped_bytes())
