"""Points of interest in a place context: Adobe's poi-detail shape, validated with its paths."""

from __future__ import annotations

from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.validation import validate


def _event(place_context: dict[str, object]) -> dict[str, object]:
    return {"_id": "e-1", "timestamp": "2026-12-01T10:00:00Z", "placeContext": place_context}


def test_a_poi_interaction_and_active_pois_are_stored() -> None:
    lobby = {
        "poiID": "d8a5c08c",
        "name": "Lobby",
        "locatingType": "beacon",
        "beaconInteractionDetails": {
            "proximityUUID": "c6c0",
            "beaconMajor": 300,
            "proximity": "near",
        },
        "metadata": {"list": [{"key": "floor", "value": "0"}]},
    }
    result = validate(
        commerce_experience_event(),
        _event(
            {
                "POIinteraction": {"poiDetail": lobby, "poiEntries": {"value": 1}},
                "activePOIs": [lobby],
            }
        ),
    )
    assert result.issues == () and result.unknown == {}
    stored = result.record["placeContext"]
    assert stored["POIinteraction"]["poiEntries"] == {"value": 1.0}
    assert stored["activePOIs"][0]["beaconInteractionDetails"]["beaconMajor"] == 300.0
    assert stored["activePOIs"][0]["metadata"]["list"] == [{"key": "floor", "value": "0"}]


def test_a_bad_poi_field_is_reported_with_its_path() -> None:
    circle = {
        "schema:coordinates": {"schema:latitude": 91, "schema:longitude": 0},
        "schema:radius": 5,
    }
    poi = {
        "beaconInteractionDetails": {"proximity": "close"},
        "geoInteractionDetails": {"geoShape": {"schema:circle": circle}},
    }
    result = validate(commerce_experience_event(), _event({"activePOIs": [poi]}))
    prefix = "placeContext.activePOIs[0]"
    circle_path = f"{prefix}.geoInteractionDetails.geoShape.schema:circle"
    assert sorted((issue.path, issue.code) for issue in result.issues) == [
        (f"{prefix}.beaconInteractionDetails.proximity", "enum"),
        (f"{circle_path}.schema:coordinates.schema:latitude", "range"),
    ]
