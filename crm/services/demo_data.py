"""Realistic fake leads for demos and benchmarks, in the database or as a CSV file."""

import csv
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from faker import Faker

from crm.models import Lead, Membership, Organization
from crm.services.lead_bulk import leads_bulk_insert
from crm.services.organizations import member_create, member_set_password

# 2,000 leads per COPY: 100,000 leads take about 7 s on Postgres here, and bigger
# batches gain nothing while holding more objects.
CREATE_BATCH_SIZE = 2000

# Real US area codes with their city and time zone: numbers validate with
# phonenumbers, and timezone-aware sends see a realistic spread.
AREA_CODES = [
    ("212", "New York", "America/New_York", 8),
    ("718", "Brooklyn", "America/New_York", 5),
    ("617", "Boston", "America/New_York", 3),
    ("215", "Philadelphia", "America/New_York", 3),
    ("202", "Washington", "America/New_York", 2),
    ("305", "Miami", "America/New_York", 3),
    ("404", "Atlanta", "America/New_York", 3),
    ("312", "Chicago", "America/Chicago", 5),
    ("713", "Houston", "America/Chicago", 4),
    ("214", "Dallas", "America/Chicago", 3),
    ("512", "Austin", "America/Chicago", 2),
    ("612", "Minneapolis", "America/Chicago", 2),
    ("303", "Denver", "America/Denver", 2),
    ("801", "Salt Lake City", "America/Denver", 1),
    ("602", "Phoenix", "America/Phoenix", 2),
    ("213", "Los Angeles", "America/Los_Angeles", 7),
    ("415", "San Francisco", "America/Los_Angeles", 4),
    ("619", "San Diego", "America/Los_Angeles", 2),
    ("206", "Seattle", "America/Los_Angeles", 3),
    ("503", "Portland", "America/Los_Angeles", 2),
    ("702", "Las Vegas", "America/Los_Angeles", 2),
    ("808", "Honolulu", "Pacific/Honolulu", 1),
    ("907", "Anchorage", "America/Anchorage", 1),
]
# Reserved for documentation (RFC 2606): a demo can never mail a real inbox.
EMAIL_DOMAINS = ["example.com", "example.net", "example.org"]
TAGS = [
    "vip",
    "newsletter",
    "repeat-customer",
    "lapsed",
    "referral",
    "wholesale",
    "app-user",
    "event-2024",
]
SOURCES = ["web", "store", "referral", "event", "instagram", "google-ads"]
TIERS = [("bronze", 50), ("silver", 30), ("gold", 15), ("platinum", 5)]

NO_PHONE_RATE = 0.05
BAD_EMAIL_RATE = 0.03
SECOND_CONTACT_RATE = 0.05
SMS_OPT_OUT_RATE = 0.02
EMAIL_OPT_OUT_RATE = 0.015
NO_EXTERNAL_ID_RATE = 0.10  # of CSV rows, only ever ones that have a phone

CSV_COLUMNS = [
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "total_spend",
    "visits",
    "timezone",
    "tags",
    "sms_opt_out",
    "email_opt_out",
    "city",
    "source",
    "loyalty_tier",
    "points",
]
# Each kind of bad row the importer must reject, as the cells it overrides.
BAD_ROW_CELLS = [
    {"phone": "12ab"},
    {"email": "jane@@example.com"},
    {"total_spend": "-20.00"},
    {"visits": "many"},
    {"external_id": "", "phone": "", "email": ""},
    {"timezone": "Mars/Olympus_Mons"},
]


@dataclass
class DemoPerson:
    first_name: str
    last_name: str
    phones: list[str]
    emails: list[str]
    total_spend: Decimal
    visits: int
    timezone: str
    tags: list[str]
    attributes: dict
    sms_opt_out: bool
    email_opt_out: bool
    email_is_bad: bool = False


@dataclass
class DemoCsv:
    """What demo_leads_csv wrote: its data rows and the lines of the bad ones."""

    rows: int
    bad_lines: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DemoOwner:
    username: str
    password: str


def demo_owner_ready(*, organization: Organization) -> DemoOwner:
    """The demo organization's owner, "<slug>-owner", with a new random password.

    Only the demo calls this: the owner is made on its first run and given a new
    password on each run, as a password can be shown only when it is set. A user of
    that name outside this organization is left alone (ValueError).
    """
    username = f"{organization.slug}-owner"
    password = secrets.token_urlsafe(12)
    membership = (
        Membership.objects.select_related("user")
        .filter(user__username=username)
        .first()
    )
    if membership is None:
        member_create(
            organization=organization,
            username=username,
            email="",
            password=password,
            role=Membership.Role.OWNER,
        )
    elif membership.organization_id != organization.pk:
        raise ValueError(f"the user {username} belongs to another organization")
    else:
        member_set_password(membership=membership, password=password)
    return DemoOwner(username=username, password=password)


def demo_leads_create(*, organization: Organization, count: int, seed: int = 0) -> int:
    """Create `count` fake leads in the organization with bulk inserts; return count.

    About 5% have no phone, 3% a malformed or empty email, a few are opted out; the
    same seed gives the same people. Phones are valid US numbers in real area codes
    (a demo pointed at a real SMS vendor would text them: keep to the simulator);
    emails are at example.com/.net/.org.
    """
    batch: list[Lead] = []
    created = 0
    for person in demo_people(count=count, seed=seed):
        lead = Lead(
            organization=organization,
            name=f"{person.first_name} {person.last_name}",
            total_spend=person.total_spend,
            visits=person.visits,
            timezone=person.timezone,
            tags=person.tags,
            attributes=person.attributes,
            sms_opt_out=person.sms_opt_out,
            email_opt_out=person.email_opt_out,
        )
        lead.set_contacts(phones=person.phones, emails=person.emails)
        batch.append(lead)
        if len(batch) >= CREATE_BATCH_SIZE:
            created += leads_bulk_insert(leads=batch)
            batch.clear()
    return created + leads_bulk_insert(leads=batch)


def demo_leads_csv(
    *, path: Path | str, count: int, seed: int = 0, bad_rows: int = 0
) -> DemoCsv:
    """Write a lead CSV of `count` good rows and `bad_rows` bad ones mixed in.

    Good rows import cleanly, each as a new lead: every row has an external id or a
    unique phone, and people whose email would be malformed get none. Some rows hold
    two phones or emails in one cell ("a; b"). Bad rows cycle through BAD_ROW_CELLS;
    their line numbers (the header is line 1) are returned.
    """
    rng = random.Random(f"csv-{seed}")
    total = count + bad_rows
    bad_indexes = set(rng.sample(range(total), bad_rows))
    people = demo_people(count=count + 1, seed=seed)
    spare = _csv_cells(next(people), index=count, rng=rng)
    result = DemoCsv(rows=total)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        good = 0
        for index in range(total):
            if index in bad_indexes:
                kind = BAD_ROW_CELLS[len(result.bad_lines) % len(BAD_ROW_CELLS)]
                cells = {**spare, "external_id": f"BAD-{index:07d}", **kind}
                result.bad_lines.append(index + 2)
            else:
                cells = _csv_cells(next(people), index=good, rng=rng)
                good += 1
            writer.writerow([cells[column] for column in CSV_COLUMNS])
    return result


def _csv_cells(person: DemoPerson, *, index: int, rng: random.Random) -> dict:
    has_external_id = not person.phones or rng.random() >= NO_EXTERNAL_ID_RATE
    return {
        "external_id": f"C{index:07d}" if has_external_id else "",
        "first_name": person.first_name,
        "last_name": person.last_name,
        "phone": "; ".join(_dialled(phone) for phone in person.phones),
        "email": "" if person.email_is_bad else "; ".join(person.emails),
        "total_spend": str(person.total_spend),
        "visits": str(person.visits),
        "timezone": person.timezone,
        "tags": "|".join(person.tags),
        "sms_opt_out": "yes" if person.sms_opt_out else "",
        "email_opt_out": "yes" if person.email_opt_out else "",
        **{key: str(person.attributes[key]) for key in CSV_COLUMNS[11:]},
    }


def _dialled(phone: str) -> str:
    # Files come with numbers as people type them; the importer normalizes them.
    return f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"


def demo_people(*, count: int, seed: int = 0) -> Iterator[DemoPerson]:
    """Yield `count` fake people; the same seed yields the same people."""
    rng = random.Random(seed)
    faker = Faker("en_US")
    faker.seed_instance(seed)
    # Faker costs ~100 µs a name; pools drawn once keep 100,000 people to seconds.
    first_names = [faker.first_name() for _ in range(400)]
    last_names = [faker.last_name() for _ in range(600)]
    area_weights = [weight for *_, weight in AREA_CODES]
    tier_names = [name for name, _ in TIERS]
    tier_weights = [weight for _, weight in TIERS]
    contacts = _UniqueContacts(rng)
    for _ in range(count):
        first, last = rng.choice(first_names), rng.choice(last_names)
        area, city, zone, _weight = rng.choices(AREA_CODES, area_weights)[0]
        phones = [] if rng.random() < NO_PHONE_RATE else [contacts.phone(area)]
        if phones and rng.random() < SECOND_CONTACT_RATE:
            phones.append(contacts.phone(rng.choice(AREA_CODES)[0]))
        emails = [contacts.email(first, last)]
        if rng.random() < SECOND_CONTACT_RATE:
            emails.append(contacts.email(first, last))
        email_is_bad = rng.random() < BAD_EMAIL_RATE
        if email_is_bad:
            emails = _spoilt(emails, rng)
        spend, visits = _spend_and_visits(rng)
        yield DemoPerson(
            first_name=first,
            last_name=last,
            phones=phones,
            emails=emails,
            total_spend=spend,
            visits=visits,
            timezone=zone,
            tags=rng.sample(TAGS, k=rng.choices([0, 1, 2, 3], [40, 35, 18, 7])[0]),
            attributes={
                "city": city,
                "source": rng.choice(SOURCES),
                "loyalty_tier": rng.choices(tier_names, tier_weights)[0],
                "points": visits * 10 + rng.randint(0, 9),
            },
            sms_opt_out=rng.random() < SMS_OPT_OUT_RATE,
            email_opt_out=rng.random() < EMAIL_OPT_OUT_RATE,
            email_is_bad=email_is_bad,
        )


class _UniqueContacts:
    """Phones and emails drawn from one random source, none of them twice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()

    def phone(self, area: str) -> str:
        while True:
            exchange = self.rng.randint(200, 999)
            if exchange % 100 == 11 or exchange == 555:  # N11 codes, 555: not real
                continue
            number = f"+1{area}{exchange}{self.rng.randint(0, 9999):04d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}"])
        address = f"{local}@{rng.choice(EMAIL_DOMAINS)}".lower()
        while address in self.used_emails:
            address = f"{local}{rng.randint(1, 9999)}@{rng.choice(EMAIL_DOMAINS)}"
            address = address.lower()
        self.used_emails.add(address)
        return address


def _spoilt(emails: list[str], rng: random.Random) -> list[str]:
    # Half empty, half malformed the ways real data is (no TLD, no "@").
    emails = rng.choice([[], [emails[0].rsplit(".", 1)[0]]])
    if emails and rng.random() < 0.5:
        emails = [emails[0].replace("@", ".")]
    return emails


def _spend_and_visits(rng: random.Random) -> tuple[Decimal, int]:
    # Most customers spend little, a few a lot; a tenth never bought.
    bought = rng.random() >= 0.1
    spend = Decimal(f"{rng.lognormvariate(5, 1.2):.2f}") if bought else Decimal(0)
    visits = int(spend / 60) + rng.randint(1, 5) if bought else rng.randint(0, 1)
    return min(spend, Decimal("99999.99")), visits
