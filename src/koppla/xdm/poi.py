"""Koppla's definition of a point of interest (POI) and the geometry it is described with.

Written from Adobe's `poi-detail` datatype (with its beacon and geo interaction details, the
keyed-list metadata) and the schema.org `GeoCoordinates`, `GeoCircle` and `GeoShape` datatypes.
A place context carries them for the POI an event happened at and the POIs active around it.
"""

from __future__ import annotations

from koppla.xdm.commerce import LATITUDE, LONGITUDE
from koppla.xdm.types import NUMBER, STRING, Array, Object, Scalar

GEO_COORDINATES = Object(
    {
        "_id": STRING,
        "schema:description": STRING,
        "schema:latitude": LATITUDE,
        "schema:longitude": LONGITUDE,
        "schema:elevation": NUMBER,
    }
)

GEO_CIRCLE = Object(
    {
        "_id": STRING,
        "schema:description": STRING,
        "schema:coordinates": GEO_COORDINATES,
        "schema:radius": NUMBER,
    }
)

GEO_SHAPE = Object(
    {
        "_id": STRING,
        "schema:description": STRING,
        # XDM asks for at least 4 polygon points and exactly 2 box corners; Koppla does not count.
        "schema:polygon": Array(GEO_COORDINATES),
        "schema:circle": GEO_CIRCLE,
        "schema:box": Array(GEO_COORDINATES),
        "schema:elevation": NUMBER,
        "ceiling": NUMBER,
    }
)

KEYED_LIST = Object({"list": Array(Object({"key": STRING, "value": STRING}))})

POI_DETAIL = Object(
    {
        # Adobe also keeps the deprecated `POIID`; Delta Lake refuses two fields whose names differ
        # only in case, so Koppla defines `poiID` alone.
        "poiID": STRING,
        "name": STRING,
        "category": STRING,
        "type": STRING,
        "distanceToPOICenter": NUMBER,
        "locatingType": STRING,  # XDM lists locating types only as an advisory meta:enum.
        "beaconInteractionDetails": Object(
            {
                "proximityUUID": STRING,
                "beaconMajor": NUMBER,
                "beaconMinor": NUMBER,
                "proximity": Scalar("string", enum=("immediate", "near", "far", "unknown")),
            }
        ),
        "geoInteractionDetails": Object(
            {"distanceToCenter": NUMBER, "deviceGeoAccuracy": NUMBER, "geoShape": GEO_SHAPE}
        ),
        "metadata": KEYED_LIST,
    },
    description="A point of interest: what it is, and how the device located itself near it.",
)
