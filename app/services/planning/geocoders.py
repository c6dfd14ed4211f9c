"""Geocoders: an address and PIN code to a point, for the `points.geocode` job only (never in a request).

GEOCODER picks one: `none` (the default: no look-ups; the job still applies what the cache knows), `nominatim`
(HTTP GET GEOCODER_URL/search?format=jsonv2&q=…, one result, India only) or `amazon-location` (Amazon Location
Service's SearchPlaceIndexForText on the place index GEOCODER_PLACE_INDEX, in AWS_REGION; GEOCODER_URL, when set,
overrides its endpoint). A misconfiguration is GeocoderMisconfigured when the geocoder is opened; a geocoder
that cannot answer now (unreachable, timed out, refusing, rate-limiting) is GeocoderUnavailable, and the job
stops for this run. "Nothing found" is None, and is cached like an answer.

A geocoder receives the destination address: point GEOCODER_URL at a server you may send addresses to. Nothing
here logs an address.
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

GEOCODERS = ("none", "nominatim", "amazon-location")
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Waybill/1 (courier tracking; destination geocoding)"
COUNTRY = "India"


class GeocoderMisconfigured(ValueError):
    """GEOCODER names an unknown geocoder, or one without the settings it needs."""


class GeocoderUnavailable(Exception):
    """The geocoder cannot answer now: try again at the job's next run."""


class Geocoder(Protocol):
    name: str  # the provider written into the cache (at most 16 characters)

    def locate(self, address: str, pincode: str | None) -> tuple[float, float] | None:
        """(lat, lon) of the address, or None when the geocoder knows no such place."""


def query_text(address: str, pincode: str | None) -> str:
    """What is asked: the address, its PIN code when the address does not end with it, and the country."""
    text = " ".join(address.split())
    if pincode and pincode not in text:
        text = f"{text} {pincode}"
    return f"{text}, {COUNTRY}"


def _checked(lat: object, lon: object) -> tuple[float, float] | None:
    try:
        lat, lon = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a server that redirects is answered as what it said: not followed


class NominatimGeocoder:
    """Nominatim's /search (https://nominatim.org/release-docs/latest/api/Search/), as JSON v2: the first result."""

    name = "nominatim"

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirects)

    def locate(self, address: str, pincode: str | None) -> tuple[float, float] | None:
        query = urllib.parse.urlencode({"q": query_text(address, pincode), "format": "jsonv2", "limit": "1",
                                        "countrycodes": "in"})
        request = urllib.request.Request(f"{self.url}/search?{query}",  # noqa: S310 - GEOCODER_URL is http(s)
                                         headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                body = response.read(1_000_000)
        except urllib.error.HTTPError as error:
            raise GeocoderUnavailable(f"Nominatim answered {error.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise GeocoderUnavailable(f"Nominatim unreachable: {getattr(error, 'reason', error)}") from None
        try:
            results = json.loads(body)
        except ValueError:
            raise GeocoderUnavailable("Nominatim answered something that is not JSON") from None
        if not isinstance(results, list):
            raise GeocoderUnavailable("Nominatim answered JSON that is not a list of places")
        if not results or not isinstance(results[0], dict):
            return None
        return _checked(results[0].get("lat"), results[0].get("lon"))


class AmazonLocationGeocoder:
    """Amazon Location Service: SearchPlaceIndexForText on one place index, India only, the first result."""

    name = "amazon-location"

    def __init__(self, place_index: str, region: str, endpoint_url: str | None = None,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.place_index = place_index
        # An endpoint of our own (a VPC endpoint, a stand-in) takes the requests as they are: the SDK's "places."
        # host prefix is for AWS's own host names.
        self.client = boto3.client("location", region_name=region, endpoint_url=endpoint_url,
                                   config=BotoConfig(connect_timeout=5, read_timeout=timeout,
                                                     retries={"max_attempts": 1},
                                                     inject_host_prefix=endpoint_url is None))

    def locate(self, address: str, pincode: str | None) -> tuple[float, float] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.search_place_index_for_text(
                IndexName=self.place_index, Text=query_text(address, pincode), MaxResults=1, FilterCountries=["IND"])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise GeocoderUnavailable(f"Amazon Location refused the search: {code}") from None
        except BotoCoreError as error:
            raise GeocoderUnavailable(f"Amazon Location unreachable: {type(error).__name__}") from None
        results = answer.get("Results") or []
        point = ((results[0].get("Place") or {}).get("Geometry") or {}).get("Point") if results else None
        if not isinstance(point, list) or len(point) != 2:
            return None
        lon, lat = point
        return _checked(lat, lon)


def open_geocoder(config: Mapping[str, Any]) -> Geocoder | None:
    """The geocoder GEOCODER names (None for `none`); GeocoderMisconfigured naming the missing setting."""
    name = str(config.get("GEOCODER") or "none").strip().lower()
    if name == "none":
        return None
    if name == "nominatim":
        url = config.get("GEOCODER_URL")
        if not url:
            raise GeocoderMisconfigured("GEOCODER=nominatim needs GEOCODER_URL (the Nominatim server).")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise GeocoderMisconfigured("GEOCODER_URL must be an http:// or https:// URL.")
        return NominatimGeocoder(url)
    if name == "amazon-location":
        place_index = config.get("GEOCODER_PLACE_INDEX")
        if not place_index:
            raise GeocoderMisconfigured("GEOCODER=amazon-location needs GEOCODER_PLACE_INDEX (the place index's "
                                        "name).")
        return AmazonLocationGeocoder(place_index, config.get("AWS_REGION") or "ap-south-1",
                                      config.get("GEOCODER_URL") or None)
    raise GeocoderMisconfigured(f"GEOCODER must be one of {', '.join(GEOCODERS)}, not {name!r}.")
