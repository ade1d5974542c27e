"""Years of demo order history in a shop database, for the history sync's tests and benchmark.

`generate_history(engine, orders, years=5)` writes `orders` orders placed at random times over
the last `years` years (the newest a week ago), each taken through the same actions as the demo
store (invoice, ship, refund, cancel, hold, written as Magento writes them), in bulk.
`add_website(engine, code)` adds a second website with one store view, so orders can be spread
over several websites.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine, func, select

from koppla.connector import schema as t
from koppla.connector.demo_store import LIFECYCLES, DemoShop, Ids, live, new_order
from koppla.core import clock

Row = dict[str, object]


def add_website(engine: Engine, code: str) -> int:
    """Add website `code` with one store group and store view (`<code>_en`); its store id."""
    with engine.begin() as conn:
        found = conn.execute(
            select(t.store.c.store_id)
            .join(t.store_website, t.store_website.c.website_id == t.store.c.website_id)
            .where(t.store_website.c.code == code)
        ).scalar()
        if found is not None:
            return int(found)
        website_id = int(conn.execute(select(func.max(t.store_website.c.website_id))).scalar_one())
        group_id = int(conn.execute(select(func.max(t.store_group.c.group_id))).scalar_one())
        store_id = int(conn.execute(select(func.max(t.store.c.store_id))).scalar_one())
        website_id, group_id, store_id = website_id + 1, group_id + 1, store_id + 1
        conn.execute(
            t.store_website.insert(),
            {"website_id": website_id, "code": code, "name": code, "default_group_id": group_id},
        )
        conn.execute(
            t.store_group.insert(),
            {"group_id": group_id, "website_id": website_id, "name": code, "code": f"{code}_store"},
        )
        conn.execute(
            t.store.insert(),
            {
                "store_id": store_id,
                "code": f"{code}_en",
                "website_id": website_id,
                "group_id": group_id,
                "name": f"{code} English",
                "is_active": 1,
            },
        )
    return store_id


def generate_history(
    engine: Engine,
    orders: int,
    *,
    years: float = 5.0,
    store_ids: Sequence[int] = (1,),
    seed: int | None = None,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Add `orders` orders placed over the last `years` years, spread over `store_ids`."""
    rng = random.Random(seed)
    now = clock.now().replace(tzinfo=None, microsecond=0)
    DemoShop(engine, seed).generate_customers(now)
    span = max(1, int(years * 365 * 86400) - 7 * 86400)  # the last actions are in the past
    done = 0
    while done < orders:
        count = min(chunk, orders - done)
        with engine.begin() as conn:
            ids = Ids.from_db(conn)
            rows: dict[str, list[Row]] = {}
            moments = sorted(
                now - timedelta(days=7, seconds=rng.randrange(span)) for _ in range(count)
            )
            for when in moments:
                draft = new_order(rng, ids, when, rng.choice(list(store_ids)))
                live(draft, ids, when, rng, rng.choice(LIFECYCLES))
                for name, new in draft.new.items():
                    rows.setdefault(name, []).extend(new)
            for table in t.metadata.sorted_tables:
                if rows.get(table.name):
                    conn.execute(table.insert(), rows[table.name])
        done += count
        if progress is not None:
            progress(count)
