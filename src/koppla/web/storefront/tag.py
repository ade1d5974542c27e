"""The storefront tag: what a merchant pastes into their shop to send its events to Koppla.

Two parts, per datastream: the Web SDK (`@adobe/alloy`) base code and `configure` call pointed at
Koppla's edge, and the Magento storefront collector's contexts (`setEventForwarding`, `setAEP`)
that tell the collector to forward to that alloy instance instead of bundling its own.
"""

from __future__ import annotations

import re
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


def host_without_port(host: str) -> str:
    """The host name in an HTTP `Host` header value: `edge.example:8443` → `edge.example`."""
    if host.startswith("["):  # IPv6 literal, [::1]:8080
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


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
