"""Users and everything they do, drawn from the world's true preferences.

Times are int64 epoch seconds until the tables are assembled. ``Clock`` holds the windows:
interaction start S, cutoff C = T - test_window_days, as-of T. Tier-relevant behaviour (site
product events, email clicks) of warm/hot users lies in [S, C); cold users have none there.
Test-window facts lie strictly inside (C, T).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.synth.person_names import EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES
from holley_gnn_assets.synth.vehicle_names import GARBAGE_YEARS, NON_FITMENT_VEHICLES
from holley_gnn_assets.synth.world import World

DAY = 86_400
HOUR = 3_600
TIERS = np.array(["cold", "warm", "hot"], dtype=object)


@dataclass(frozen=True)
class Clock:
    """Epoch seconds of the interaction start S, cutoff C and as-of T."""

    start: int
    cutoff: int
    as_of: int

    @classmethod
    def from_dates(cls, start: dt.date, cutoff: dt.date, as_of: dt.date) -> Clock:
        def sec(d: dt.date) -> int:
            return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())

        return cls(sec(start), sec(cutoff), sec(as_of))


def _obj(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _upper_first(s: pd.Series) -> pd.Series:
    return s.str[:1].str.upper() + s.str[1:]


@dataclass
class Users:
    """Audience users (index u): ids, canonical emails, true vehicle (-1: none) and tier."""

    user_id: np.ndarray
    email: np.ndarray  # canonical lower-case email
    status: np.ndarray  # 0 fitment vehicle, 1 garbage YMM, 2 YMM without fitment
    vehicle: np.ndarray  # -1 unless status 0
    null_email: np.ndarray  # every attribute row has a null/empty email
    tier: np.ndarray  # 0 cold, 1 warm, 2 hot

    @property
    def n(self) -> int:
        return len(self.user_id)

    @property
    def reachable(self) -> np.ndarray:
        """Users the pipeline can see with a vehicle: fitment vehicle and a usable email."""
        return (self.status == 0) & ~self.null_email


def emails(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    first = _obj(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), len(idx))]
    last = _obj(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), len(idx))]
    dom = _obj(EMAIL_DOMAINS)[rng.integers(0, len(EMAIL_DOMAINS), len(idx))]
    num = idx.astype(str).astype(object)
    dotted = rng.random(len(idx)) < 0.6
    local = np.where(dotted, first + "." + last + num, first + last + num)
    return local + "@" + dom


def build_users(params: dict[str, Any], world: World, rng: np.random.Generator) -> Users:
    """Users with a vehicle status, a true vehicle (Zipf over vehicles) and a tier."""
    n = int(params["n_users"])
    user_id = "U" + (rng.permutation(n) + 10_000_000).astype(str).astype(object)
    email = emails(np.arange(n), rng)
    u = rng.random(n)
    no_v, non_fit = float(params["no_vehicle_share"]), float(params["non_fitment_share"])
    status = np.where(u < no_v, 1, np.where(u < no_v + non_fit, 2, 0))
    vehicle = np.where(status == 0, rng.choice(world.veh.n, n, p=world.veh.weight), -1)
    null_email = rng.random(n) < float(params["null_email_share"])
    tier = np.zeros(n, dtype=np.int64)
    ok = np.flatnonzero((status == 0) & ~null_email)
    n_warm = min(round(float(params["warm_share"]) * n), len(ok))
    n_hot = min(round(float(params["hot_share"]) * n), len(ok) - n_warm)
    active = rng.choice(ok, n_warm + n_hot, replace=False)
    tier[active[:n_warm]] = 1
    tier[active[n_warm:]] = 2
    return Users(user_id, email, status, vehicle, null_email, tier)


def messy_case(
    s: pd.Series, rng: np.random.Generator, p_upper: float, p_first: float, p_space: float
) -> pd.Series:
    """Emails spelled as people type them: some upper case, capitalised, or with spaces."""
    u = rng.random(len(s))
    s = s.copy()
    up, first = u < p_upper, (u >= p_upper) & (u < p_upper + p_first)
    s[up] = s[up].str.upper()
    s[first] = _upper_first(s[first])
    sp = rng.random(len(s)) < p_space
    s[sp] = " " + s[sp] + "  "
    return s


def attributes_table(
    params: dict[str, Any], world: World, users: Users, clock: Clock, rng: np.random.Generator
) -> pd.DataFrame:
    """Several attribute rows per user; the latest (updated_at) holds the true vehicle."""
    veh = world.veh
    extra = np.minimum(rng.poisson(float(params["extra_attr_rows"]), users.n), 3)
    rows = 1 + extra
    u = np.repeat(np.arange(users.n), rows)
    rank = np.arange(len(u)) - np.repeat(np.cumsum(rows) - rows, rows)  # 0 = latest
    latest_ts = clock.cutoff - rng.integers(DAY, 700 * DAY, users.n)
    gap = rng.integers(DAY, 300 * DAY, len(u)) * (rank > 0)
    csum = np.cumsum(gap)
    first_of_user = np.repeat(np.cumsum(rows) - rows, rows)
    ts = latest_ts[u] - (csum - csum[first_of_user])
    # which vehicle / status each row names
    status = users.status[u].copy()
    vehicle = users.vehicle[u].copy()
    change = (rank > 0) & (rng.random(len(u)) < float(params["vehicle_change_share"]))
    vehicle[change] = rng.choice(veh.n, int(change.sum()), p=veh.weight)
    status[change] = 0
    n_rows = len(u)
    year = np.full(n_rows, None, dtype=object)
    make = np.full(n_rows, None, dtype=object)
    model = np.full(n_rows, None, dtype=object)
    ok = status == 0
    year[ok] = veh.year[vehicle[ok]].astype(str)
    make[ok], model[ok] = veh.make[vehicle[ok]], veh.model[vehicle[ok]]
    bad = np.flatnonzero(status == 1)
    donor = rng.integers(0, veh.n, len(bad))
    year[bad] = _obj(GARBAGE_YEARS)[rng.integers(0, len(GARBAGE_YEARS), len(bad))]
    make[bad] = np.where(rng.random(len(bad)) < 0.15, None, veh.make[donor])
    model[bad] = veh.model[donor]
    nf = np.flatnonzero(status == 2)
    pick = rng.integers(0, len(NON_FITMENT_VEHICLES), len(nf))
    year[nf] = rng.integers(1985, 2021, len(nf)).astype(str)
    make[nf] = _obj([m for m, _ in NON_FITMENT_VEHICLES])[pick]
    model[nf] = _obj([m for _, m in NON_FITMENT_VEHICLES])[pick]
    # messy rendering of make/model: case and whitespace
    mk, md = pd.Series(make, dtype=object), pd.Series(model, dtype=object)
    mode = rng.choice(4, n_rows, p=[0.55, 0.15, 0.15, 0.15])
    has = mk.notna().to_numpy()
    for s in (mk, md):
        sel = has & (mode == 1)
        s[sel] = s[sel].str.upper()
        sel = has & (mode == 2)
        s[sel] = s[sel].str.lower()
        sel = has & (mode == 3) & s.notna().to_numpy()
        s[sel] = "  " + s[sel].str.replace(" ", "   ", regex=False) + " "
    email = messy_case(pd.Series(users.email[u], dtype=object), rng, 0.08, 0.12, 0.05)
    nul = users.null_email[u]
    email[nul] = _obj([None, "", "  "])[rng.integers(0, 3, int(nul.sum()))]
    df = pd.DataFrame(
        {
            "user_id": users.user_id[u],
            "email": email.to_numpy(),
            "v1_year": year,
            "v1_make": mk.to_numpy(),
            "v1_model": md.to_numpy(),
            "updated_at": ts,
        }
    )
    # append order: oldest first per user, users shuffled a little by time
    return df.iloc[np.lexsort((-rank, ts))].reset_index(drop=True)


class EventLog:
    """Accumulates rows of the site-event, treatment and order tables as arrays."""

    def __init__(self) -> None:
        self.site: list[dict[str, np.ndarray]] = []
        self.treat: list[dict[str, np.ndarray]] = []
        self.orders: list[dict[str, np.ndarray]] = []

    def add_site(self, user: np.ndarray, event: Any, sku: np.ndarray, ts: np.ndarray) -> None:
        n = len(user)
        self.site.append(
            {
                "user_id": user,
                "event_name": np.broadcast_to(_obj(event), n),
                "sku": sku,
                "event_timestamp": ts,
            }
        )

    def add_treat(
        self, user: np.ndarray, trt: np.ndarray, kind: str, sku: np.ndarray | None, ts: np.ndarray
    ) -> None:
        n = len(user)
        self.treat.append(
            {
                "user_id": user,
                "treatment_id": trt,
                "interaction_type": np.broadcast_to(_obj(kind), n),
                "sku": np.full(n, None, dtype=object) if sku is None else sku,
                "interaction_timestamp": ts,
            }
        )

    @staticmethod
    def frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
        cols = list(parts[0])
        return pd.DataFrame({c: np.concatenate([np.asarray(p[c]) for p in parts]) for c in cols})


def split_counts(counts: np.ndarray) -> np.ndarray:
    """Owner index repeated ``counts`` times."""
    return np.repeat(np.arange(len(counts)), counts)


def _campaigns(clock: Clock) -> tuple[np.ndarray, np.ndarray]:
    """Email campaigns every 3.5 days (14:00 UTC) from S - 30 days up to T - 1 day."""
    ts = np.arange(clock.start - 30 * DAY + 14 * HOUR, clock.as_of - DAY, int(3.5 * DAY))
    ids = "T" + pd.to_datetime(ts, unit="s").strftime("%Y%m%d").to_numpy(dtype=object)
    return ts, ids


def _pick_campaign(
    camp_ts: np.ndarray, lo: int, hi: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    idx = np.flatnonzero((camp_ts >= lo) & (camp_ts <= hi))
    if len(idx) == 0:
        raise ValueError("no email campaign falls in a needed window; widen the time windows")
    return idx[rng.integers(0, len(idx), n)]


def email_clicks(
    log: EventLog,
    world: World,
    users: Users,
    who: np.ndarray,
    lo: int,
    hi: int,
    clock: Clock,
    rng: np.random.Generator,
) -> int:
    """CLICKED rows (with their SENT and VIEWED rows) for users ``who``; the clicked sku is drawn
    from the user's true preference; the campaign is sent in [lo, hi], the click follows."""
    camp_ts, camp_id = _campaigns(clock)
    c = _pick_campaign(camp_ts, lo, hi, len(who), rng)
    sent = camp_ts[c] + rng.integers(0, 2 * HOUR, len(who))
    viewed = sent + rng.integers(10 * 60, 20 * HOUR, len(who))
    clicked = viewed + rng.integers(60, 20 * HOUR, len(who))
    uid, trt = users.user_id[who], camp_id[c]
    vehicle = users.vehicle[who]
    sku = world.cat.sku[world.timed(world.sampler.draw(vehicle, rng), clicked, vehicle,
                                    world.sampler)]
    log.add_treat(uid, trt, "SENT", None, sent)
    log.add_treat(uid, trt, "VIEWED", None, viewed)
    log.add_treat(uid, trt, "CLICKED", sku, clicked)
    return len(who)


def background_treatments(
    log: EventLog, params: dict[str, Any], users: Users, clock: Clock, rng: np.random.Generator
) -> None:
    """SENT rows to the whole audience over the period; VIEWED for some (never CLICKED)."""
    camp_ts, camp_id = _campaigns(clock)
    n = rng.poisson(float(params["sent_per_user"]), users.n)
    who = split_counts(n)
    c = rng.integers(0, len(camp_ts), len(who))
    sent = camp_ts[c] + rng.integers(0, 2 * HOUR, len(who))
    log.add_treat(users.user_id[who], camp_id[c], "SENT", None, sent)
    v = rng.random(len(who)) < float(params["viewed_share"])
    viewed = sent[v] + rng.integers(10 * 60, 48 * HOUR, int(v.sum()))
    keep = viewed < clock.as_of - HOUR
    log.add_treat(users.user_id[who][v][keep], camp_id[c][v][keep], "VIEWED", None, viewed[keep])


def ignored_site_events(
    log: EventLog,
    params: dict[str, Any],
    world: World,
    users: Users,
    clock: Clock,
    rng: np.random.Generator,
) -> None:
    """page_viewed / email_opened (no sku) and product_list_viewed (with a sku): all ignored."""
    lo, hi = clock.start - 60 * DAY, clock.as_of - HOUR
    for event, rate, with_sku in (
        ("page_viewed", float(params["page_views_per_user"]), False),
        ("email_opened", 0.15, False),
        ("product_list_viewed", 0.05, True),
    ):
        who = split_counts(rng.poisson(rate, users.n))
        ts = rng.integers(lo, hi, len(who))
        sku = np.full(len(who), None, dtype=object)
        if with_sku:
            sku = world.cat.sku[rng.integers(0, world.cat.n, len(who))]
        log.add_site(users.user_id[who], event, sku, ts)


def site_product_events(
    log: EventLog,
    world: World,
    users: Users,
    who: np.ndarray,
    event: str,
    lo: int,
    hi: int,
    rng: np.random.Generator,
) -> None:
    """Product events of users ``who`` (one per entry) in [lo, hi), skus from true preferences."""
    vehicle = users.vehicle[who]
    prod = world.sampler.draw(vehicle, rng)
    ts = rng.integers(lo, hi, len(who))
    log.add_site(users.user_id[who], event,
                 world.cat.sku[world.timed(prod, ts, vehicle, world.sampler)], ts)
