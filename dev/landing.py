"""What the benches share about a generated world's folders: settings that point at them, and
event folders held out of the landing zone and brought back day by day."""

from __future__ import annotations

import os
import shutil

from jobs.config import Settings


def settings_at(settings: Settings, root: str, lake: str = "lake") -> Settings:
    """``settings`` with the landing zone at ``<root>/raw`` and the lake at ``<root>/<lake>``
    (its audiences and reports beside it)."""
    storage = settings.storage.model_copy(
        update={
            "raw_root": f"{root}/raw",
            "lake_root": f"{root}/{lake}",
            "audience_root": f"{root}/{lake}-audiences",
            "reports_root": f"{root}/{lake}-reports",
        }
    )
    return settings.model_copy(update={"storage": storage})


def hold_out_after(raw: str, last: str, sources: list[str]) -> str:
    """Moves every event folder of a day after ``last`` aside (the CRM export stays), so that a
    run sees the days up to ``last`` -> where they went."""
    aside = f"{raw}/../held-out"
    for source in sources:
        if not os.path.isdir(f"{raw}/{source}"):
            continue
        for folder in sorted(os.listdir(f"{raw}/{source}")):
            if folder.startswith("dt=") and folder[3:] > last:
                os.makedirs(f"{aside}/{source}", exist_ok=True)
                shutil.move(f"{raw}/{source}/{folder}", f"{aside}/{source}/{folder}")
    return aside


def bring_back_until(raw: str, aside: str, last: str) -> None:
    """Returns the held-out folders of days up to ``last`` to the landing zone."""
    if not os.path.isdir(aside):
        return
    for source in os.listdir(aside):
        for folder in sorted(os.listdir(f"{aside}/{source}")):
            if folder[3:] <= last:
                shutil.move(f"{aside}/{source}/{folder}", f"{raw}/{source}/{folder}")


def bring_back_all(raw: str, aside: str) -> None:
    bring_back_until(raw, aside, "9999")
    shutil.rmtree(aside, ignore_errors=True)
