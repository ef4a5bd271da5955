"""The Kite fake's historical candles: `GET /instruments/historical/{token}/{interval}`.

Where the candles come from (deterministic, so a test can recompute any of them with `candles`):

* the two official mocks are the first six minute candles of one session each:
  historical_minute.json (an NSE equity, 2017-12-15, `[ts, o, h, l, c, v]`) and historical_oi.json
  (a NIFTY future, 2019-12-04, with OI). Futures (instrument_type FUT) take the OI mock as their
  template, every other instrument the minute mock;
* on its template's own date an instrument's minute candles ARE the mock's six candles, verbatim;
* on any other weekday not in `KiteFake.holidays` it trades a full session, 09:15 to 15:29 IST,
  375 minute candles: minute i repeats template candle i mod 6 with its four prices shifted by
  `drift(day, i)` (a whole number of 0.05 ticks between -1.00 and +1.00, so high ≥ open/close ≥
  low still holds), volume and OI unchanged;
* k-minute candles aggregate k minute candles from 09:15 (open of the first, highest high, lowest
  low, close of the last, summed volume, last OI) and a day candle the whole session, stamped
  00:00 IST of its date — what Kite serves for coarser intervals;
* weekends and holidays have no candles.

A request is checked as Kite checks it: the interval's name (InputException "invalid interval"),
the dates, and the range — more calendar days (both ends included) than the interval allows is
refused with Kite's InputException "interval exceeds max limit: N days". OI is sent (as a 7th
value, 0 for an instrument without OI) only with `oi=1`. Every request is logged in
`KiteFake.historical` (token, interval, from, to, continuous, oi, arrival time, answer status).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from tests.support.fakes.kite import KiteFake

# Kite's per-request range limits (calendar days) by interval
MAX_DAYS = {"minute": 60, "3minute": 100, "5minute": 100, "10minute": 100, "15minute": 200, "30minute": 200,
            "60minute": 400, "day": 2000}
STEP_MIN = {"minute": 1, "3minute": 3, "5minute": 5, "10minute": 10, "15minute": 15, "30minute": 30, "60minute": 60}
SESSION_OPEN = dt.time(9, 15)
SESSION_MINUTES = 375  # 09:15 to 15:30
TICK = 0.05
KITE_TIME = "%Y-%m-%d %H:%M:%S"
IST_SUFFIX = "+0530"


class Template:
    """One official mock: its date and its minute candles as arrays (o/h/l/c, volume, oi)."""

    def __init__(self, doc: dict):
        rows = doc["data"]["candles"]
        self.rows = rows
        self.day = dt.date.fromisoformat(rows[0][0][:10])
        self.prices = np.array([r[1:5] for r in rows], dtype=np.float64)
        self.volume = np.array([r[5] for r in rows], dtype=np.int64)
        self.oi = np.array([r[6] if len(r) > 6 else 0 for r in rows], dtype=np.int64)


def drift(day: dt.date, i: np.ndarray) -> np.ndarray:
    """The price shift of minute `i` of a derived day: (-20 … +20) ticks, from the date and minute."""
    return ((day.toordinal() * 31 + i * 7) % 41 - 20) * TICK


def minute_candles(template: Template, day: dt.date) -> tuple[list[dt.datetime], np.ndarray, np.ndarray, np.ndarray]:
    """(open times IST, o/h/l/c rows, volumes, OIs) of one instrument's minute candles on `day`."""
    if day == template.day:
        times = [dt.datetime.strptime(r[0][:19], "%Y-%m-%dT%H:%M:%S") for r in template.rows]
        return times, template.prices, template.volume, template.oi
    i = np.arange(SESSION_MINUTES)
    k = i % len(template.rows)
    prices = np.round(template.prices[k] + drift(day, i)[:, None], 2)
    start = dt.datetime.combine(day, SESSION_OPEN)
    return [start + dt.timedelta(minutes=int(m)) for m in i], prices, template.volume[k], template.oi[k]


def aggregate(times, prices, volume, oi, starts: np.ndarray):
    """Candles made of the runs of minutes beginning at `starts` (exchange-style OHLCV, last OI)."""
    ends = np.append(starts[1:], len(times)) - 1
    rows = np.column_stack([prices[starts, 0], np.maximum.reduceat(prices[:, 1], starts),
                            np.minimum.reduceat(prices[:, 2], starts), prices[ends, 3]])
    return [times[s] for s in starts], rows, np.add.reduceat(volume, starts), oi[ends]


def candles(template: Template, interval: str, day: dt.date, *, with_oi: bool) -> list[list]:
    """Kite's candle rows of one instrument, interval and day (none on weekends and holidays)."""
    times, prices, volume, oi = minute_candles(template, day)
    if interval == "day":
        times, prices, volume, oi = aggregate(times, prices, volume, oi, np.array([0]))
        times = [dt.datetime.combine(day, dt.time(0, 0))]
    elif interval != "minute":
        offsets = np.array([(t - dt.datetime.combine(day, SESSION_OPEN)).seconds // 60 for t in times])
        group = offsets // STEP_MIN[interval]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        times, prices, volume, oi = aggregate(times, prices, volume, oi, starts)
        times = [dt.datetime.combine(day, SESSION_OPEN) + dt.timedelta(minutes=int(g) * STEP_MIN[interval]) for g in group[starts]]
    out = []
    for j, t in enumerate(times):
        row = [t.strftime("%Y-%m-%dT%H:%M:%S") + IST_SUFFIX, *map(float, prices[j]), int(volume[j])]
        if with_oi:
            row.append(int(oi[j]))
        out.append(row)
    return out


def template_of(fake: "KiteFake", token: int) -> Template:
    row = next((r for r in fake.rows.values() if int(r["instrument_token"]) == token), None)
    name = "historical_oi" if row is not None and row["instrument_type"] == "FUT" else "historical_minute"
    return Template(fake.mock(name))


def rate_exceeded(fake: "KiteFake", now: float) -> bool:
    """Kite's 3 requests/second on this endpoint: more arrivals than that in the last second."""
    if fake.historical_rate is None:
        return False
    recent = [e for e in fake.historical if now - e["at"] < 1.0]
    return len(recent) >= fake.historical_rate


def answer(fake: "KiteFake", token: int, interval: str, query: str) -> tuple[int, dict]:
    """(HTTP status, JSON body) of one historical request; logs it in `fake.historical`."""
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    now = time.monotonic()
    entry = {"token": token, "interval": interval, "from": q.get("from"), "to": q.get("to"),
             "continuous": q.get("continuous"), "oi": q.get("oi"), "at": now}
    with fake.lock:
        limited = rate_exceeded(fake, now)
        fake.historical.append(entry)
        fake.throttled += limited
    status, body = (429, error("NetworkException", "Too many requests")) if limited else validate_and_answer(fake, token, interval, q)
    entry["status"] = status
    return status, body


def error(error_type: str, message: str) -> dict:
    return {"status": "error", "message": message, "data": None, "error_type": error_type}


def parse_time(text: str | None) -> dt.datetime | None:
    for fmt in (KITE_TIME, "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text or "", fmt)
        except ValueError:
            continue
    return None


def validate_and_answer(fake: "KiteFake", token: int, interval: str, q: dict[str, str]) -> tuple[int, dict]:
    if interval not in MAX_DAYS:
        return 400, error("InputException", "invalid interval")
    if not any(int(r["instrument_token"]) == token for r in fake.rows.values()):
        return 400, error("InputException", "invalid token")
    start, end = parse_time(q.get("from")), parse_time(q.get("to"))
    if start is None or end is None:
        return 400, error("InputException", "invalid from or to date")
    if start > end:
        return 400, error("InputException", "from date should be before to date")
    if (end.date() - start.date()).days + 1 > MAX_DAYS[interval]:
        return 400, error("InputException", f"interval exceeds max limit: {MAX_DAYS[interval]} days")
    template = template_of(fake, token)
    with_oi = q.get("oi") == "1"
    # ISO times compare as strings; a day candle (00:00) counts for its whole date
    lo = start.strftime("%Y-%m-%dT%H:%M:%S") if interval != "day" else start.strftime("%Y-%m-%d")
    hi = end.strftime("%Y-%m-%dT%H:%M:%S")
    rows = []
    day = start.date()
    while day <= end.date():
        if day.weekday() < 5 and day not in fake.holidays:
            rows += [r for r in candles(template, interval, day, with_oi=with_oi) if lo <= r[0][:19] <= hi]
        day += dt.timedelta(days=1)
    return 200, {"status": "success", "data": {"candles": rows}}


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
