"""The load generator behind `edge_throughput.py`: one process, one asyncio loop, raw HTTP/1.1.

Each worker process opens `conns` keep-alive connections to 127.0.0.1 with
`asyncio.open_connection`, writes hand-built `POST /ee/v1/interact` requests and reads only the
status line, `Content-Length` and the body. Request bodies are prebuilt alloy-shaped templates
(page views, product views, add-to-cart, checkouts, purchases) split around two slots, a
sequence number in the page URL and the ISO-8601 timestamp, so each request is a cheap
`b"".join` and every event is unique (the pipeline dedupes identical events).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

SEQ_SLOT = "@@SEQ@@"
TS_SLOT = "@@TS@@"
REQUEST_TIMEOUT_S = 30.0
MAX_REQUESTS_PER_CONN = 10_000_000
MAX_RECONNECTS_PER_CONN = 1_000
HEAD_LIMIT = 64 * 1024
SITE = "https://shop.koppla.test"

PERSONALIZATION_QUERY: dict[str, Any] = {
    "personalization": {
        "schemas": [
            "https://ns.adobe.com/personalization/default-content-item",
            "https://ns.adobe.com/personalization/html-content-item",
            "https://ns.adobe.com/personalization/json-content-item",
            "https://ns.adobe.com/personalization/redirect-item",
            "https://ns.adobe.com/personalization/ruleset-item",
            "https://ns.adobe.com/personalization/message/in-app",
            "https://ns.adobe.com/personalization/message/content-card",
            "https://ns.adobe.com/personalization/dom-action",
        ],
        "decisionScopes": ["__view__"],
        "surfaces": [f"web://{SITE.removeprefix('https://')}/"],
    }
}
PRODUCTS = [
    ("WJ12-S-BLUE", "Zeppelin Yoga Pant", 82.0, "Bottoms/Pants"),
    ("MH03-M-RED", "Abominable Hoodie", 69.0, "Tops/Hoodies"),
    ("24-MB01", "Joust Duffle Bag", 34.0, "Gear/Bags"),
    ("24-WG080", "Sprite Yoga Companion Kit", 77.0, "Gear/Fitness"),
    ("MS09-L-BLACK", "Ryker LumaTech Tee", 32.0, "Tops/Tees"),
    ("WS12-XS-ORANGE", "Radiant Tee", 22.0, "Tops/Tees"),
]
SCREENS = [(1280, 720, "landscape"), (390, 844, "portrait"), (1920, 1080, "landscape")]


@dataclass(frozen=True)
class LoadSpec:
    """What one worker process does during one phase (picklable, sent to the child)."""

    host: str
    port: int
    datastream: str
    phase: str
    batch: int
    conns: int
    worker: int
    run_tag: str
    start_at: float  # wall-clock time at which every worker starts sending
    warmup_s: float
    seconds: float
    every_type: bool = False  # a mix of every storefront event type, not just the six commonest


@dataclass
class WorkerResult:
    """What one worker saw; latencies only for requests completed in the measured window."""

    worker: int
    measured_requests: int = 0
    measured_acked_requests: int = 0
    measured_acked_events: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    total_acked_events: int = 0  # warm-up and drain included: what the pipeline must store
    measured_window_s: float = 0.0


def xdm_event(kind: int, variant: int, name: str = "") -> dict[str, Any]:
    """One alloy event (the captured sample's shape) of the given kind, with the two slots."""
    sku, title, price, category = PRODUCTS[variant % len(PRODUCTS)]
    width, height, orientation = SCREENS[variant % len(SCREENS)]
    slug = category.lower().replace("/", "-")
    pages = [
        ("home", f"{SITE}/?seq={SEQ_SLOT}"),
        (f"product:{sku}", f"{SITE}/p/{sku.lower()}.html?seq={SEQ_SLOT}"),
        (f"product:{sku}", f"{SITE}/p/{sku.lower()}.html?added=1&seq={SEQ_SLOT}"),
        ("checkout", f"{SITE}/checkout/?seq={SEQ_SLOT}"),
        ("success", f"{SITE}/checkout/onepage/success/?seq={SEQ_SLOT}"),
        (f"category:{slug}", f"{SITE}/c/{slug}.html?seq={SEQ_SLOT}"),
    ]
    page_name, url = pages[kind % len(pages)]
    xdm: dict[str, Any] = {
        "web": {
            "webPageDetails": {"URL": url, "name": name or page_name},
            "webReferrer": {"URL": f"{SITE}/" if kind else ""},
        },
        "device": {
            "screenHeight": height,
            "screenWidth": width,
            "screenOrientation": orientation,
        },
        "environment": {
            "type": "browser",
            "browserDetails": {"viewportWidth": width, "viewportHeight": height},
        },
        "placeContext": {"localTimezoneOffset": 0, "localTime": TS_SLOT, "ianaTimezone": "UTC"},
        "timestamp": TS_SLOT,
        "implementationDetails": {
            "name": "https://ns.adobe.com/experience/alloy",
            "version": "2.33.1",
            "environment": "browser",
        },
        "eventType": "web.webpagedetails.pageViews",
    }
    item = {
        "SKU": sku,
        "name": title,
        "quantity": 1 + variant % 3,
        "priceTotal": price,
        "currencyCode": "EUR",
    }
    cart = {"cartID": f"cart-{variant:05d}"}
    order = {
        "purchaseID": f"order-{variant:06d}",
        "currencyCode": "EUR",
        "priceTotal": price * item["quantity"],
        "orderType": "checkout",
        "payments": [
            {
                "paymentType": "checkmo",
                "paymentAmount": price * item["quantity"],
                "currencyCode": "EUR",
            }
        ],
    }
    email = {"personalEmail": {"address": f"shopper{variant}@example.com"}}
    requisition = {"ID": f"rl-{variant}", "name": "Office", "description": "weekly order"}
    search = {
        "query": "duffle",
        "sort": [{"attribute": "price", "order": "ASC"}],
        "refinements": [{"attribute": "color", "value": ["blue"], "isRange": False}],
    }
    both = [item, item | {"SKU": "24-MB01", "name": "Joust Duffle Bag"}]
    extras: list[dict[str, Any]] = [
        {},
        {
            "eventType": "commerce.productViews",
            "productListItems": [item],
            "commerce": {"productViews": {"value": 1}},
        },
        {
            "eventType": "commerce.productListAdds",
            "productListItems": [item],
            "commerce": {"productListAdds": {"value": 1}, "cart": cart},
        },
        {
            "eventType": "commerce.checkouts",
            "productListItems": both,
            "commerce": {"checkouts": {"value": 1}, "cart": cart},
        },
        {
            "eventType": "commerce.purchases",
            "productListItems": [item],
            **email,
            "commerce": {"purchases": {"value": 1}, "order": order, "cart": cart},
        },
        {},
        {
            "eventType": "commerce.productListOpens",
            "productListItems": [item],
            "commerce": {"productListOpens": {"value": 1}, "cart": cart},
        },
        {
            "eventType": "commerce.productListRemovals",
            "productListItems": [item],
            "commerce": {"productListRemovals": {"value": 1}, "cart": cart},
        },
        {
            "eventType": "commerce.productListViews",
            "productListItems": both,
            "commerce": {"productListViews": {"value": 1}, "cart": cart},
        },
        {
            "eventType": "userAccount.login",
            "userAccount": {"login": 1},
            **email,
            "person": {"accountID": f"c-{variant}"},
        },
        {"eventType": "userAccount.logout", "userAccount": {"logout": 1}},
        {"eventType": "userAccount.createProfile", "userAccount": {"createProfile": 1}, **email},
        {"eventType": "userAccount.updateProfile", "userAccount": {"updateProfile": 1}, **email},
        {
            "eventType": "searchRequest",
            "searchRequest": {"id": f"s-{variant}", "value": 1},
            "siteSearch": search,
        },
        {
            "eventType": "searchResponse",
            "searchResponse": {"id": f"s-{variant}", "value": 1},
            "siteSearch": {"suggestions": ["duffle bag"], "numberOfResults": 1},
            "productListItems": [{"SKU": sku, "name": title}],
        },
        {
            "eventType": "commerce.requisitionListOpens",
            **email,
            "commerce": {"requisitionListOpens": {"value": 1}, "requisitionList": requisition},
        },
        {
            "eventType": "commerce.requisitionListAdds",
            "productListItems": [item],
            **email,
            "commerce": {"requisitionListAdds": {"value": 1}, "requisitionList": requisition},
        },
        {
            "eventType": "commerce.requisitionListRemovals",
            "productListItems": [item],
            **email,
            "commerce": {"requisitionListRemovals": {"value": 1}, "requisitionList": requisition},
        },
        {
            "eventType": "commerce.requisitionListDeletes",
            **email,
            "commerce": {"requisitionListDeletes": {"value": 1}, "requisitionList": requisition},
        },
    ]
    xdm |= extras[kind % len(extras)]
    return {"xdm": xdm, "query": PERSONALIZATION_QUERY}


def request_body(events: list[bytes]) -> bytes:
    """The whole interact body around already-encoded events."""
    tail = orjson.dumps(
        {
            "query": {"identity": {"fetch": ["ECID", "CORE"]}},
            "meta": {
                "queueTimeMillis": 61,
                "state": {"domain": "shop.koppla.test", "cookiesEnabled": True},
            },
        }
    )
    return b'{"events":[' + b",".join(events) + b"]," + tail[1:]


class BodyFactory:
    """Unique request bodies from templates split around the sequence and timestamp slots."""

    KINDS = 6  # page, product view, add to cart, checkout, purchase, category page
    ALL_KINDS = 19  # every storefront event type (domain.md §4.1)

    def __init__(self, batch: int, tag: str, *, every_type: bool = False) -> None:
        self._batch = batch
        kinds = self.ALL_KINDS if every_type else self.KINDS
        self._pool = kinds * 10
        self._tag = tag.encode()
        self._templates = [
            self._split(orjson.dumps(xdm_event(i % kinds, i // kinds * 7 + i)))
            for i in range(self._pool)
        ]
        prefix, _, tail = request_body([b"@@EVENTS@@"]).partition(b"@@EVENTS@@")
        self._prefix, self._tail = prefix, tail
        self._seq = 0
        self._second = -1
        self._second_text = b""

    @staticmethod
    def _split(template: bytes) -> list[bytes]:
        """Alternating literal parts and slot names (`S` sequence, `T` timestamp)."""
        parts: list[bytes] = []
        for chunk in template.split(SEQ_SLOT.encode()):
            for index, piece in enumerate(chunk.split(TS_SLOT.encode())):
                if index:
                    parts.append(b"T")
                parts.append(piece)
            parts.append(b"S")
        return parts[:-1]

    def _timestamp(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%03dZ" % (self._second_text, int((now - second) * 1000))

    def next_body(self) -> bytes:
        """One body of `batch` unique events."""
        stamp = self._timestamp()
        out = [self._prefix]
        for index in range(self._batch):
            self._seq += 1
            seq = self._tag + b"-%d" % self._seq
            parts = self._templates[self._seq % self._pool]
            if index:
                out.append(b",")
            for pos, part in enumerate(parts):
                if pos % 2 == 0:
                    out.append(part)
                else:
                    out.append(seq if part == b"S" else stamp)
        out.append(self._tail)
        return b"".join(out)


class Requests:
    """Whole HTTP/1.1 requests: head with a unique `requestId` plus a fresh body."""

    def __init__(self, spec: LoadSpec) -> None:
        self._bodies = BodyFactory(
            spec.batch, f"{spec.run_tag}-{spec.phase}-w{spec.worker}", every_type=spec.every_type
        )
        self._id_prefix = b"%08x-%04x-4%03x-8000-" % (
            int(spec.run_tag, 16) & 0xFFFFFFFF,
            spec.worker,
            spec.batch & 0xFFF,
        )
        self._path = b"/ee/v1/interact?configId=" + spec.datastream.encode() + b"&requestId="
        self._host = f"{spec.host}:{spec.port}".encode()
        self._count = 0

    def next_request(self) -> bytes:
        """The next request's bytes."""
        self._count += 1
        body = self._bodies.next_body()
        return b"".join(
            (
                b"POST ",
                self._path,
                self._id_prefix,
                b"%012x" % self._count,
                b" HTTP/1.1\r\nHost: ",
                self._host,
                b"\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status code and body of one response (needs `Content-Length`, as uvicorn sends it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


class Window:
    """The measured window of a phase, on this process's `perf_counter` clock."""

    def __init__(self, spec: LoadSpec) -> None:
        offset = time.perf_counter() - time.time()
        self.start = spec.start_at + offset
        self.measure = self.start + spec.warmup_s
        self.end = self.measure + spec.seconds


async def _connect(spec: LoadSpec) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(spec.host, spec.port, limit=HEAD_LIMIT)


def _count_error(result: WorkerResult, key: str) -> None:
    result.errors[key] = result.errors.get(key, 0) + 1


async def drive_connection(
    spec: LoadSpec, window: Window, requests: Requests, result: WorkerResult
) -> None:
    """Send requests back to back on one keep-alive connection until the window ends."""
    reader, writer = await _connect(spec)
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    sent = reconnects = 0
    while sent < MAX_REQUESTS_PER_CONN and time.perf_counter() < window.end:
        payload = requests.next_request()
        sent += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                writer.write(payload)
                status, _ = await read_response(reader)
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as error:
            _count_error(result, type(error).__name__)
            writer.close()
            reconnects += 1
            if reconnects > MAX_RECONNECTS_PER_CONN:
                return
            await asyncio.sleep(0.05)
            reader, writer = await _connect(spec)
            continue
        done = time.perf_counter()
        _record(spec, window, result, status, began, done)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _record(
    spec: LoadSpec, window: Window, result: WorkerResult, status: int, began: float, done: float
) -> None:
    if status == 200:
        result.total_acked_events += spec.batch
    if not window.measure <= done < window.end:
        return
    result.measured_requests += 1
    if status == 200:
        result.measured_acked_requests += 1
        result.measured_acked_events += spec.batch
        result.latencies_ms.append((done - began) * 1000.0)
    else:
        _count_error(result, str(status))


async def run_worker(spec: LoadSpec) -> WorkerResult:
    """Drive `spec.conns` connections for the whole phase; returns what was seen."""
    window = Window(spec)
    requests = Requests(spec)
    result = WorkerResult(worker=spec.worker, measured_window_s=spec.seconds)
    tasks = [drive_connection(spec, window, requests, result) for _ in range(spec.conns)]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            _count_error(result, f"conn:{type(outcome).__name__}")
    return result


def worker_main(spec: LoadSpec, results: Any) -> None:
    """Process entry point: run one phase and put the `WorkerResult` on the `results` queue."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    results.put(runner(run_worker(spec)))
