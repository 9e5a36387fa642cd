"""The synthetic shop: categories, products with Zipf-like popularity, and shopper personas.

Personas are the planted "similar users" structure: people of one persona share category tastes,
so a lookalike model fitted on one persona's buyers should rank that persona's non-buyers high.
"""

from __future__ import annotations

import bisect
import itertools
import random

CATEGORIES: dict[str, float] = {  # category -> base price
    "winter_coats": 180.0,
    "boots": 120.0,
    "tents": 250.0,
    "laptops": 1100.0,
    "phones": 800.0,
    "headphones": 150.0,
    "sofas": 900.0,
    "lamps": 60.0,
    "dresses": 90.0,
    "sneakers": 110.0,
    "toys": 35.0,
    "books": 18.0,
}
PRODUCTS_PER_CATEGORY = 40

PERSONAS: dict[str, dict[str, float]] = {
    "outdoor": {"winter_coats": 6, "boots": 5, "tents": 4, "sneakers": 1, "books": 1},
    "tech": {"laptops": 6, "phones": 5, "headphones": 5, "books": 1},
    "home": {"sofas": 5, "lamps": 6, "toys": 2, "books": 2},
    "fashion": {"dresses": 6, "sneakers": 5, "boots": 2, "winter_coats": 1},
    "family": {"toys": 6, "books": 4, "lamps": 2, "sneakers": 2},
}
PERSONA_SHARES = {"outdoor": 0.2, "tech": 0.2, "home": 0.2, "fashion": 0.2, "family": 0.2}

# Zipf(s=1.1) over the products of a category: product k is drawn with weight 1/k^1.1.
_ZIPF_CUM = list(itertools.accumulate(1.0 / (k**1.1) for k in range(1, PRODUCTS_PER_CATEGORY + 1)))


def product_id(category: str, rank: int) -> str:
    return f"{category[:3].upper()}-{rank:04d}"


def pick_product(rng: random.Random, category: str) -> tuple[str, float]:
    rank = bisect.bisect_left(_ZIPF_CUM, rng.random() * _ZIPF_CUM[-1]) + 1
    base = CATEGORIES[category]
    price = round(base * (0.6 + 0.8 * ((rank * 37) % 100) / 100.0), 2)
    return product_id(category, rank), price


def pick_category(rng: random.Random, persona: str) -> str:
    # 85% from the persona's tastes, 15% anywhere: tastes are strong but not exclusive.
    if rng.random() < 0.15:
        return rng.choice(list(CATEGORIES))
    weights = PERSONAS[persona]
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def pick_persona(rng: random.Random) -> str:
    return rng.choices(list(PERSONA_SHARES), weights=list(PERSONA_SHARES.values()))[0]
