"""A person's clickstream over the generated days: sessions on web (cookies) and app (device),
logins that tie identifiers together, product views, carts, purchases and email engagement."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from jobs.generate.catalogue import pick_category, pick_product
from jobs.generate.population import OFFICE_IP, TEST_EMAILS, Person, messy_email, messy_phone

WEB_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
APP_UA = "ShopApp/5.2 (Android 14; Pixel 8)"


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Emitter:
    """Builds event dicts with deterministic ids from the person's own random stream."""

    def __init__(self, rng: random.Random, person: Person):
        self.rng = rng
        self.person = person

    def event(self, source: str, etype: str, t: datetime, **fields) -> dict:
        e = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": etype,
            "event_ts": _ts(t),
            "source": source,
            "country": self.person.country,
        }
        e.update({k: v for k, v in fields.items() if v is not None})
        return e


def _consent_on(person: Person, day: int) -> bool:
    if person.consent_change_day is not None and day >= person.consent_change_day:
        return False
    return person.consent_initial


class _Visitor:
    """One person's days, drawn in a fixed order from their own random stream: the order of
    the draws (here and in the writer between two events) is what makes a seed a world."""

    def __init__(self, rng: random.Random, person: Person):
        self.rng, self.person, self.em = rng, person, Emitter(rng, person)
        self.logged_in_once: set[str] = set()  # each cookie / device logs in on first use
        self.planted_views = 0
        self.t = datetime.min

    def _wait(self, low: int, high: int) -> None:
        self.t += timedelta(seconds=self.rng.randint(low, high))

    def days(self, start: datetime, days: int) -> Iterator[tuple[int, dict]]:
        rng, person = self.rng, self.person
        for day in range(days):
            must_plant = person.plant_browse_abandoner and self.planted_views < 2
            must_plant = must_plant and day >= days - 3
            if not (rng.random() < person.activity or must_plant or (day == 0 and person.cookies)):
                continue
            consent = _consent_on(person, day)
            self.t = start + timedelta(days=day, seconds=rng.randint(6 * 3600, 20 * 3600))
            for _ in range(1 if rng.random() < 0.75 else 2):
                yield from self.session(day, consent, must_plant)
            yield from self.emails(start, day)

    def session(self, day: int, consent: bool, must_plant: bool) -> Iterator[tuple[int, dict]]:
        rng, person = self.rng, self.person
        use_app = person.device is not None and rng.random() < 0.4
        source = "app" if use_app else "web"
        ident = {"device_id": person.device} if use_app else {
            "anonymous_id": rng.choice(person.cookies)
        }  # fmt: skip
        key = ident.get("device_id") or ident["anonymous_id"]
        ip = OFFICE_IP if person.works_in_office and self.t.weekday() < 5 else person.ip
        common = {
            "ip": ip,
            "user_agent": APP_UA if use_app else WEB_UAS[person.index % len(WEB_UAS)],
            "session_id": f"s-{rng.getrandbits(48):012x}",
            "ad_consent": consent if rng.random() < 0.3 or day == 0 else None,
            **ident,
        }
        user = None
        if person.user_id and (key not in self.logged_in_once or rng.random() < 0.4):
            self.logged_in_once.add(key)
            user = person.user_id
            yield day, self.login(source, common, day)
            self._wait(5, 60)
        for i in range(rng.randint(1, 6)):
            yield from self.view(day, source, {**common, "user_id": user}, must_plant and i < 2)

    def login(self, source: str, common: dict, day: int) -> dict:
        rng, person = self.rng, self.person
        first = not person.email or person.uses_test_email
        shown = TEST_EMAILS[person.index % 3] if person.uses_test_email else person.email
        traits = {"user_id": person.user_id}
        if rng.random() < 0.5 or day == 0:
            traits["email"] = messy_email(rng, shown) if not first else shown
            if person.phone and rng.random() < 0.5:
                traits["phone"] = messy_phone(rng, person.phone, person.country)
        return self.em.event(source, "login", self.t, **common, **traits)

    def view(self, day: int, source: str, common: dict, planted: bool):
        """A product view, perhaps put in the cart, perhaps bought."""
        rng, person = self.rng, self.person
        if planted:
            cat = "winter_coats"
            self.planted_views += 1
        else:
            cat = pick_category(rng, person.persona)
            if person.plant_browse_abandoner and cat == "winter_coats":
                self.planted_views += 1
        product, price = pick_product(rng, cat)
        item = {"product_id": product, "category": cat, "price": price}
        yield day, self.em.event(source, "product_view", self.t, **common, page=f"/p/{product}",
                                 **item)  # fmt: skip
        self._wait(10, 240)
        if rng.random() < 0.15 and person.buy_propensity > 0:
            yield day, self.em.event(source, "add_to_cart", self.t, **common, **item, quantity=1)
            self._wait(10, 120)
            if rng.random() < person.buy_propensity * 3:
                order = f"o-{rng.getrandbits(40):010x}"
                bought = {"order_id": order, "revenue": price, "currency": "USD"}
                yield day, self.em.event(source, "purchase", self.t, **common, **item, quantity=1,
                                         **bought)  # fmt: skip
                self._wait(10, 120)

    def emails(self, start: datetime, day: int) -> Iterator[tuple[int, dict]]:
        rng, person = self.rng, self.person
        if not (person.subscribed and person.email and rng.random() < 0.3):
            return
        campaign = f"cmp-{start.date().isoformat()}-{day % 7}"
        shown = messy_email(rng, person.email)
        te = self.t + timedelta(hours=1)
        yield day, self.em.event("email", "email_open", te, email=shown, campaign_id=campaign)
        if rng.random() < 0.3:
            te += timedelta(minutes=2)
            landing = {"anonymous_id": rng.choice(person.cookies), "page": "/landing/" + campaign}
            yield day, self.em.event("email", "email_click", te, email=shown,
                                     campaign_id=campaign, **landing)  # fmt: skip


def person_events(
    rng: random.Random, person: Person, start: datetime, days: int
) -> Iterator[tuple[int, dict]]:
    """Yields (day index, event) in time order for one person."""
    return _Visitor(rng, person).days(start, days)
