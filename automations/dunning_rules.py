"""Which dunning notice an overdue invoice is due, under which key, in what words.

Pure rules, read by the scan (automations.selectors) and the dunning services alike.
"""


def dunning_key(*, invoice_id: int, threshold: int) -> str:
    return f"inv{invoice_id}-d{threshold}"


def threshold_reached(*, days_overdue: int, thresholds: list[int]) -> int | None:
    reached = [days for days in thresholds if days <= days_overdue]
    return max(reached) if reached else None


def dunning_message(*, job: dict, number: str, first_name: str) -> str:
    greeting = f"Hi {first_name}, your" if first_name else "Your"
    invoice = f"invoice {number}" if number else "invoice"
    days = job["days_overdue"]
    text = (
        f"{greeting} {invoice} of {job['amount']} {job['currency']} is {days} "
        f"day{'s' if days != 1 else ''} overdue."
    )
    if job["payment_link"]:
        text += f" Pay here: {job['payment_link']}"
    return text
