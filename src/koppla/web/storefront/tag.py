"""The storefront tag: what a merchant pastes into their shop to send its events to Koppla.

Two parts, per datastream: the Web SDK (`@adobe/alloy`) base code and `configure` call pointed at
Koppla's edge, and the Magento storefront collector's contexts (`setEventForwarding`, `setAEP`)
that tell the collector to forward to that alloy instance instead of bundling its own.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from html import escape
from typing import Any

from koppla.core import codec
from koppla.platform.catalog.models import Datastream

# alloy's own check on `edgeDomain` (domain.md §10.1): a host name, no scheme, port or path.
EDGE_DOMAIN = re.compile(r"^[a-z0-9.-]+$", re.IGNORECASE)

# Adobe's standard base code: defines `window.alloy` as a queue until the library loads.
BASE_CODE = (
    "!function(n,o){o.forEach(function(o){n[o]||((n.__alloyNS=n.__alloyNS||[]).push(o),"
    "n[o]=function(){var u=arguments;return new Promise(function(i,l){n[o].q.push([i,l,u])})},"
    'n[o].q=[])})}(window,["alloy"]);'
)

_TAG = """\
<!-- Koppla storefront tag: datastream {name} -->
<script>
  {base_code}
</script>
<script src="{alloy_src}" async></script>
<script>
  // Events wait in the browser until the shopper's consent is set: call
  // alloy("setConsent", ...) from your consent banner (the Magento collector does it for you
  // from the mg_dnt cookie).
  alloy("configure", {configure});
</script>
<script>
  (function (w) {{
    var forwarding = {forwarding};
    var aep = {aep};
    var mse = w.magentoStorefrontEvents;
    if (mse) {{
      mse.context.setEventForwarding(forwarding);
      mse.context.setAEP(aep);
      return;
    }}
    // The storefront events SDK is not loaded yet: write the same data-layer contexts its
    // setters write; the Adobe Client Data Layer keeps them until the SDK reads them.
    var layer = (w.adobeDataLayer = w.adobeDataLayer || []);
    layer.push({{eventForwardingContext: null}}, {{eventForwardingContext: forwarding}});
    layer.push({{aepContext: null}}, {{aepContext: aep}});
  }})(window);
</script>
"""


def check_edge_domain(edge_domain: str) -> str:
    """`edge_domain` if alloy accepts it as `edgeDomain`, else `ValueError` naming the rule."""
    if not EDGE_DOMAIN.match(edge_domain):
        raise ValueError(
            f"edge domain {edge_domain!r} must be a host name without scheme, port or path "
            "(the Web SDK always speaks https:// to port 443)"
        )
    return edge_domain


def split_host(host: str) -> tuple[str, int | None]:
    """An HTTP `Host` header value as (name, port): `edge.example:8443` → `edge.example`, 8443.

    The port is None when the value has none (or none that is a number).
    """
    if host.startswith("["):  # IPv6 literal, [::1]:8080
        cut = host.find("]") + 1
    else:
        cut = host.find(":") if host.count(":") == 1 else len(host)
    name, port = host[:cut], host[cut + 1 :]
    return (name, int(port)) if host[cut : cut + 1] == ":" and port.isdigit() else (host, None)


@dataclass(frozen=True, slots=True)
class EdgeDomain:
    """The `edgeDomain` a tag or page gives the Web SDK, and why browsers may not reach it.

    `warnings` are sentences, each saying what is wrong and what to do; empty when nothing is
    known to be wrong.
    """

    name: str
    warnings: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """True when alloy accepts `name` as its `edgeDomain` (a bare host name)."""
        return bool(EDGE_DOMAIN.match(self.name))


def edge_domain_for(configured: str | None, *, scheme: str, host: str) -> EdgeDomain:
    """The `edgeDomain` for a request: `configured` (`public_edge_domain`), else its host.

    `scheme` and `host` (the `Host` header) say how the request reached Koppla. Alloy only
    speaks `https://` to port 443 of a host name (domain.md §10.1): when the host comes from a
    request made any other way, or is an IP address, browsers will not reach the edge there,
    and the warnings say what to do.
    """
    if configured:
        return EdgeDomain(configured, _name_warnings(configured, "`public_edge_domain`"))
    name, port = split_host(host)
    reached = scheme == "https" and port in (None, 443)
    reach = () if reached else (_reach_warning(name, f"{scheme}://{host}/"),)
    return EdgeDomain(name, reach + _name_warnings(name, "the request's Host header"))


def _reach_warning(name: str, reached_at: str) -> str:
    return (
        f"The Web SDK only sends events to https://{name}/ on port 443, but Koppla was reached "
        f"at {reached_at}, so events will not arrive. Serve Koppla with TLS on port 443 "
        "(`koppla up --tls-cert CERT --tls-key KEY --port 443`), or behind a TLS proxy on port "
        "443 and set `public_edge_domain` to the proxy's host name."
    )


def _name_warnings(name: str, source: str) -> tuple[str, ...]:
    if _is_ip_address(name):
        return (
            f"The edge domain {name} (from {source}) is an IP address, but the Web SDK's "
            "https:// requests need a host name that Koppla's TLS certificate names. Point a DNS "
            "name (or a hosts entry) at Koppla, serve TLS for it, and set `public_edge_domain` to "
            "that name.",
        )
    if not EDGE_DOMAIN.match(name):
        return (
            f"The edge domain {name!r} (from {source}) is not a host name the Web SDK accepts "
            "(no scheme, port or path). Set `public_edge_domain` to the bare host name browsers "
            "reach Koppla's edge at, such as edge.shop.example.",
        )
    return ()


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


def alloy_configuration(datastream: Datastream, edge_domain: str) -> dict[str, Any]:
    """The options of `alloy("configure", ...)` that point the Web SDK at Koppla's edge."""
    return {
        "datastreamId": datastream.id,
        "orgId": datastream.org_id,
        "edgeDomain": check_edge_domain(edge_domain),
        "edgeBasePath": "ee",
        "thirdPartyCookiesEnabled": False,
        "defaultConsent": "pending",
        "clickCollectionEnabled": False,
        "debugEnabled": False,
    }


def aep_context(datastream: Datastream, edge_domain: str) -> dict[str, str]:
    """The Magento collector's `aepContext`: forward through the page's own `alloy` instance."""
    return {
        "imsOrgId": datastream.org_id,
        "datastreamId": datastream.id,
        "edgeDomain": check_edge_domain(edge_domain),
        "webSdkName": "alloy",
    }


def render_tag(datastream: Datastream, *, edge_domain: str, alloy_src: str) -> str:
    """The HTML a merchant pastes into every page of their shop (in `<head>`).

    `edge_domain` is Koppla's public edge host name; `alloy_src` is where the page loads the
    Web SDK bundle from. Raises `ValueError` when `edge_domain` is not a bare host name.
    """
    return _TAG.format(
        name=escape(datastream.name or datastream.id).replace("--", "- -"),
        base_code=BASE_CODE,
        alloy_src=escape(alloy_src, quote=True),
        configure=script_json(alloy_configuration(datastream, edge_domain)),
        forwarding=script_json({"aep": True, "commerce": False}, indent="    "),
        aep=script_json(aep_context(datastream, edge_domain), indent="    "),
    )


def script_json(value: Any, *, indent: str | None = "  ") -> str:
    """JSON safe inside a `<script>` element (no `</script>` or `<!--` can close it).

    Indented, with `indent` before every line but the first; compact when `indent` is None.
    """
    if indent is None:
        text = codec.dumps(value).decode()
    else:
        text = codec.dumps_pretty(value).replace("\n", "\n" + indent)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
