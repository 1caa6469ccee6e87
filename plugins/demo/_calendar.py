"""The two years the demo covers: which days and hours people shop on, and local time in Oslo.

Everything is precomputed per day once (731 entries), so drawing a moment is a bisect and two string joins.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

FIRST_DAY = date(2023, 1, 1)
DAYS = 731  # through 2024-12-31
MONTHS: tuple[str, ...] = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))
TIMEZONE = ZoneInfo("Europe/Oslo")

# Shop traffic by month (garden season and Christmas) and weekday (Saturday in stores, evenings online).
_MONTH = (0.7, 0.7, 0.9, 1.2, 1.5, 1.4, 1.0, 1.0, 0.9, 0.85, 1.1, 1.3)
_POS_WEEKDAY = (1.0, 0.95, 1.0, 1.05, 1.2, 1.5, 0.3)
_WEB_WEEKDAY = (1.1, 1.0, 1.0, 0.95, 0.8, 0.8, 1.2)
# Hours people shop at; stores open 07-21 (Sundays 12-18), none of it near the 02:00 DST switch.
_POS_HOURS = (7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
_POS_HOUR_WEIGHT = (2, 4, 6, 8, 9, 9, 9, 9, 10, 11, 10, 8, 5, 3)
_SUNDAY_HOURS = (12, 13, 14, 15, 16, 17)
_WEB_HOURS = tuple(range(6, 24))
_WEB_HOUR_WEIGHT = (1, 2, 3, 4, 4, 5, 5, 5, 5, 5, 6, 7, 8, 10, 11, 11, 9, 5)


@dataclass(frozen=True, slots=True)
class Day:
    iso: str  # 2024-03-15
    compact: str  # 20240315: the start of every sort key
    month: int  # 0-11
    month_key: str  # 2024-03
    weekday: int
    offset: str  # +01:00 or +02:00 (Oslo, at shop hours)


class Calendar:
    """Draws days and times of day for orders, weighted by season, weekday and growth."""

    def __init__(self) -> None:
        self.days: list[Day] = []
        pos_weights: list[float] = []
        web_weights: list[float] = []
        for n in range(DAYS):
            d = FIRST_DAY + timedelta(days=n)
            noon = datetime(d.year, d.month, d.day, 12, tzinfo=TIMEZONE).isoformat()[-6:]
            self.days.append(
                Day(d.isoformat(), d.strftime("%Y%m%d"), d.month - 1, d.isoformat()[:7], d.weekday(), noon)
            )
            trend = _MONTH[d.month - 1] * (1 + 0.12 * n / 365)  # the chain grows about 12 % a year
            pos_weights.append(trend * _POS_WEEKDAY[d.weekday()])
            web_weights.append(trend * _WEB_WEEKDAY[d.weekday()])
        self._pos = list(accumulate(pos_weights))
        self._web = list(accumulate(web_weights))
        self._pos_hours = list(accumulate(_POS_HOUR_WEIGHT))
        self._web_hours = list(accumulate(_WEB_HOUR_WEIGHT))

    def day(self, rng: random.Random, *, web: bool, after: int = 0) -> int:
        """A day index in ``[after, DAYS)``, drawn by the channel's weights."""
        cum = self._web if web else self._pos
        low = cum[after - 1] if after > 0 else 0.0
        return min(bisect(cum, low + rng.random() * (cum[-1] - low)), DAYS - 1)

    def time(self, rng: random.Random, day: int, *, web: bool) -> str:
        """``HH:MM:SS`` at which a person shops on ``day``."""
        if web:
            hour = _WEB_HOURS[bisect(self._web_hours, rng.random() * self._web_hours[-1])]
        elif self.days[day].weekday == 6:
            hour = rng.choice(_SUNDAY_HOURS)
        else:
            hour = _POS_HOURS[bisect(self._pos_hours, rng.random() * self._pos_hours[-1])]
        seconds = rng.randrange(3600)
        return f"{hour:02d}:{seconds // 60:02d}:{seconds % 60:02d}"
