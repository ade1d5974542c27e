"""Koppla's definition of the browsing context an ExperienceEvent carries.

Written from Adobe's Web Details, Environment Details and Implementation Details field groups
(webinfo, device, environment, browserdetails, placecontext, geo, implementationdetails);
the points of interest a place context names are in `koppla.xdm.poi`.
Alloy fills these automatically on every storefront event.
"""

from __future__ import annotations

from koppla.xdm.commerce import COUNTRY_CODE, LATITUDE, LONGITUDE, MEASURE, STATE_PROVINCE
from koppla.xdm.poi import POI_DETAIL
from koppla.xdm.types import BOOLEAN, DATE_TIME, INTEGER, NUMBER, STRING, Array, Object, Scalar

NON_NEGATIVE_INTEGER = Scalar("integer", minimum=0)

WEB = Object(
    {
        "webPageDetails": Object(
            {
                "siteSection": STRING,
                "name": STRING,
                "viewName": STRING,
                "URL": STRING,
                "server": STRING,
                "isErrorPage": BOOLEAN,
                "isHomePage": BOOLEAN,
                "isPreRendered": BOOLEAN,
                "pageViews": MEASURE,
            }
        ),
        "webInteraction": Object(
            {
                "type": Scalar("string", enum=("download", "exit", "other")),
                "URL": STRING,
                "name": STRING,
                "region": STRING,
                "linkClicks": MEASURE,
            }
        ),
        "webReferrer": Object(
            {
                "URL": STRING,
                "type": Scalar(
                    "string",
                    enum=(
                        "internal",
                        "external",
                        "search_engine",
                        "typed_bookmarked",
                        "email",
                        "social",
                        "usenet",
                        "hard_drive",
                        "nojs",
                        "conversational_ai",
                        "unknown",
                    ),
                ),
            }
        ),
    },
    description="The page, the interaction on it and where the visitor came from.",
)

DEVICE = Object(
    {
        "typeID": STRING,
        "typeIDService": STRING,
        "type": STRING,  # XDM lists device types only as an advisory meta:enum.
        "manufacturer": STRING,
        "model": STRING,
        "modelNumber": STRING,
        "screenHeight": INTEGER,
        "screenWidth": INTEGER,
        "colorDepth": INTEGER,
        "screenOrientation": Scalar("string", enum=("portrait", "landscape")),
        "isBackgroundPushEnabled": BOOLEAN,
        "isLocationEnabled": BOOLEAN,
        "isPushOptIn": BOOLEAN,
    }
)

BROWSER_DETAILS = Object(
    {
        "name": STRING,
        "vendor": STRING,
        "version": STRING,
        "acceptLanguage": STRING,
        "cookiesEnabled": BOOLEAN,
        "javaScriptEnabled": BOOLEAN,
        "javaScriptVersion": STRING,
        "javaEnabled": BOOLEAN,
        "javaVersion": STRING,
        "quicktimeVersion": STRING,
        "thirdPartyCookiesEnabled": BOOLEAN,
        "viewportHeight": INTEGER,
        "viewportWidth": INTEGER,
        "userAgent": STRING,
        "userAgentClientHints": Object(
            {
                "brands": Array(Object({"brand": STRING, "version": STRING})),
                "mobile": BOOLEAN,
                "architecture": STRING,
                "bitness": STRING,
                "model": STRING,
                "platform": STRING,
                "platformVersion": STRING,
                "wow64": BOOLEAN,
            }
        ),
    }
)

ENVIRONMENT = Object(
    {
        "type": Scalar("string", enum=("browser", "application", "iot", "external", "widget")),
        "browserDetails": BROWSER_DETAILS,
        "operatingSystem": STRING,
        "operatingSystemVersion": STRING,
        "operatingSystemVendor": STRING,
        "colorDepth": NON_NEGATIVE_INTEGER,
        "viewportHeight": NON_NEGATIVE_INTEGER,
        "viewportWidth": NON_NEGATIVE_INTEGER,
        "duration": NON_NEGATIVE_INTEGER,
        "viewedScreen": STRING,
        "previousScreen": STRING,
        "connectionType": STRING,
        "carrier": STRING,
        "domain": STRING,
        "ISP": STRING,
        "ipV4": STRING,
        "ipV6": STRING,
    }
)

GEO = Object(
    {
        "_id": STRING,
        "schema:description": STRING,
        "schema:latitude": LATITUDE,
        "schema:longitude": LONGITUDE,
        "schema:elevation": NUMBER,
        "countryCode": COUNTRY_CODE,
        "stateProvince": STATE_PROVINCE,
        "city": STRING,
        "postalCode": STRING,
        "dmaID": INTEGER,
        "msaID": INTEGER,
    }
)

PLACE_CONTEXT = Object(
    {
        "localTime": DATE_TIME,
        "IPLocalTime": DATE_TIME,
        "ianaTimezone": STRING,
        "localTimezoneOffset": INTEGER,
        "IPLocalTimezoneOffset": INTEGER,
        "geo": GEO,
        "POIinteraction": Object(
            {
                # Not Adobe's deprecated `POIDetail`: it differs from `poiDetail` only in case,
                # which Delta Lake refuses.
                "poiDetail": POI_DETAIL,
                "poiEntries": MEASURE,
                "poiExits": MEASURE,
            }
        ),
        "activePOIs": Array(POI_DETAIL),
    }
)

IMPLEMENTATION_DETAILS = Object(
    {
        "name": STRING,
        "version": STRING,
        "environment": Scalar("string", enum=("browser", "app", "server", "iot")),
    },
    description="The SDK that sent the event, e.g. `https://ns.adobe.com/experience/alloy`.",
)
