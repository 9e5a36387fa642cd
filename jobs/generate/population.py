"""Synthetic people with the identifiers real trackers and CRMs see, and their traps."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from jobs.generate.catalogue import pick_persona

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Félix",
    "Grace",
    "Hugo",
    "Ines",
    "Jack",
    "Karin",
    "Liam",
    "Maria",
    "Noah",
    "Olivia",
    "Paul",
    "Rosa",
    "Sam",
    "Tess",
    "Zoë",
]
LAST_NAMES = [
    "Smith",
    "O'Brien",
    "Müller",
    "Dubois",
    "García",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Johnson",
    "Brown",
    "Martin",
    "Lee",
    "Walker",
    "Young",
    "King",
]
DOMAINS = ["gmail.com", "googlemail.com", "yahoo.com", "outlook.com", "example.org", "mail.de"]
# country -> (calling code, national number length, zip maker)
COUNTRIES = {
    "US": ("1", 10, lambda r: f"{r.randint(10000, 99999)}"),
    "GB": ("44", 10, lambda r: f"SW{r.randint(1, 20)} {r.randint(1, 9)}AB"),
    "FR": ("33", 9, lambda r: f"{r.randint(10000, 95999)}"),
    "DE": ("49", 10, lambda r: f"{r.randint(10000, 99999)}"),
}
# country -> (city, state) pairs customer files carry; states as CRMs write them
CITIES = {
    "US": [("San Francisco", "CA"), ("Austin", "Texas"), ("new york", "NY")],
    "GB": [("London", ""), ("St. Albans", "Herts")],
    "FR": [("Paris", ""), ("Saint-Étienne", "Loire")],
    "DE": [("Köln", "NW"), ("Berlin", "")],
}


STREETS = {
    "US": ["Main Street", "Oak Avenue", "Park Drive", "Maple Road", "Cedar Lane"],
    "GB": ["High Street", "Station Road", "Church Lane", "Mill Road"],
    "FR": ["Rue de la Paix", "Avenue Victor Hugo", "Boulevard Voltaire"],
    "DE": ["Hauptstraße", "Bahnhofstraße", "Gartenweg"],
}
STREET_SHORT = {"Street": "St.", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln", "Drive": "Dr",
                "Boulevard": "Bd"}  # fmt: skip
DUPLICATE_CUSTOMER_RATE = 0.05  # customers keyed in twice, under a second id


def crm_details(crm_id: str, country: str) -> dict[str, str]:
    """City, state, gender, date of birth and street address of a customer record, some left
    empty as real exports leave them. Drawn from the customer id alone, so the rest of the
    world is the same with or without them."""
    rng = random.Random(crm_id)
    city, state = rng.choice(CITIES[country])
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(20000))
    written = rng.choice([born.isoformat(), born.strftime("%Y%m%d"), ""])
    gender = rng.choice(["F", "M", "female", "male", ""])
    return {
        "city": city,
        "state": state,
        "gender": gender,
        "date_of_birth": written,
        "address": f"{rng.randint(1, 250)} {rng.choice(STREETS[country])}",
    }


def typo(rng: random.Random, word: str) -> str:
    """One keying slip: a letter dropped, doubled, swapped with the next or replaced."""
    i = rng.randrange(1, len(word))  # the first letter is rarely the one mistyped
    kind = rng.choice(["drop", "double", "swap", "replace"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    if kind == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeiourstn") + word[i + 1 :]


def typo_duplicate(row: dict[str, str]) -> dict[str, str] | None:
    """A second record of the same customer, keyed in again under a new id (``D`` for ``C``):
    a typo in one name, the street written short, no email or phone; None for most
    customers. Drawn from the customer id alone."""
    rng = random.Random(row["customer_id"] + "/duplicate")
    if rng.random() >= DUPLICATE_CUSTOMER_RATE:
        return None
    field = rng.choice(["first_name", "last_name"])
    address = row["address"]
    for long, short in STREET_SHORT.items():
        address = address.replace(long, short)
    return dict(
        row,
        customer_id="D" + row["customer_id"][1:],
        email="",
        phone="",
        address=address,
        **{field: typo(rng, row[field])},
    )


TEST_EMAILS = ["test@test.com", "Test@Test.com ", "a@a.com"]
OFFICE_IP = "203.0.113.10"  # one NAT address shared by a whole office
HOUSEHOLD_EVERY, HOUSEHOLD_SIZE = 40, 3  # people 40k..40k+2 share one app device


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class Person:
    key: str  # ground-truth person key, never seen by the pipeline
    index: int
    persona: str
    kind: str  # "known" (has an account) or "anonymous"
    activity: float  # probability of being active on a day
    cookies: list[str] = field(default_factory=list)
    device: str | None = None
    user_id: str | None = None
    crm_id: str | None = None
    email: str | None = None  # canonical: trimmed, lowercased
    phone: str | None = None  # canonical: E.164
    first_name: str | None = None
    last_name: str | None = None
    country: str = "US"
    zip: str = ""
    ip: str = ""
    uses_test_email: bool = False
    works_in_office: bool = False
    subscribed: bool = False
    consent_initial: bool = True
    consent_change_day: int | None = None  # day index on which consent is withdrawn
    crm_opt_out: bool = False
    plant_browse_abandoner: bool = False
    buy_propensity: float = 0.05


def make_person(seed: int, index: int) -> Person:
    rng = random.Random(seed * 1_000_003 + index)
    kind = "known" if rng.random() < 0.7 else "anonymous"
    country = rng.choices(list(COUNTRIES), weights=[5, 2, 2, 2])[0]
    p = Person(
        key=f"P{index:07d}",
        index=index,
        persona=pick_persona(rng),
        kind=kind,
        activity=min(0.9, rng.lognormvariate(-1.3, 0.6)),
        country=country,
        zip=COUNTRIES[country][2](rng),
        ip=f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    )
    p.cookies = [_uuid(rng) for _ in range(1 if kind == "anonymous" else rng.randint(1, 3))]
    p.plant_browse_abandoner = rng.random() < 0.08
    p.buy_propensity = 0.0 if p.plant_browse_abandoner else rng.uniform(0.04, 0.3)
    p.works_in_office = rng.random() < 0.05
    p.consent_initial = rng.random() < 0.9
    if rng.random() < 0.05:
        p.consent_change_day = rng.randint(1, 6)
    if kind == "known":
        p.user_id = f"u{index:08d}"
        p.device = _uuid(rng) if rng.random() < 0.5 else None
        if index % HOUSEHOLD_EVERY < HOUSEHOLD_SIZE:  # a family iPad shared by a household
            p.device = _uuid(random.Random(seed * 7 + index // HOUSEHOLD_EVERY))
        p.first_name = rng.choice(FIRST_NAMES)
        p.last_name = rng.choice(LAST_NAMES)
        local = f"{p.first_name}.{p.last_name}{index}".lower()
        local = local.replace("'", "").replace("é", "e").replace("ë", "e").replace("ü", "u")
        local = local.replace("í", "i").replace("ï", "i")
        p.email = f"{local}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.6:
            code, length, _ = COUNTRIES[country]
            p.phone = (
                "+"
                + code
                + str(rng.randint(2, 9))
                + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))
            )
        p.uses_test_email = rng.random() < 0.03
        p.subscribed = rng.random() < 0.6
        if rng.random() < 0.6:
            p.crm_id = f"C{index:08d}"
            p.crm_opt_out = rng.random() < 0.05
    return p


def messy_email(rng: random.Random, email: str) -> str:
    """How an email really arrives: odd case, stray spaces."""
    local, domain = email.split("@")
    if rng.random() < 0.3:
        local = local.capitalize()
    if rng.random() < 0.2:
        domain = domain.upper()
    pad = " " if rng.random() < 0.15 else ""
    return f"{pad}{local}@{domain}{pad}"


def messy_phone(rng: random.Random, phone: str, country: str) -> str:
    """How a phone really arrives: national format, spaces, dashes, 00 prefix."""
    code = COUNTRIES[country][0]
    national = phone[1 + len(code) :]
    style = rng.randint(0, 3)
    if style == 0:
        return phone
    if style == 1:
        return f"00{code} {national[:3]} {national[3:]}"
    if style == 2 and country == "US":
        return f"({national[:3]}) {national[3:6]}-{national[6:]}"
    return f"0{national[:4]} {national[4:]}" if country != "US" else f"1-{national}"
