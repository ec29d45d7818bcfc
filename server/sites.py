"""Sites: the shops this server answers for, loaded from a TOML file."""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from server.protocol import SiteKey

Origin = Annotated[str, Meta(pattern=r"^https?://[^/\s]+$")]


class Site(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: SiteKey = ""
    name: str
    origins: tuple[Origin, ...] = ()
    # Signs identify events: HMAC-SHA256(secret, customer_id). Empty means identify is refused.
    secret: str = ""
    # Demo only: accept identify without a signature.
    trust_unsigned_identify: bool = False
    currency: str = "EUR"
    # IANA zone for visit.local_hour and visit.weekday.
    timezone: str = "UTC"
    # Where an "apply" link sends a code, e.g. "https://shop.example/discount/{code}"; empty: no link.
    discount_url: str = ""
    # Site-wide pop-up limits (transactional rules are exempt): at most this many per session (0: no
    # limit), and none within this many seconds after another was shown.
    popups_per_session: int = 0
    quiet_period_s: int = 0
    # How prices are written, e.g. "de_DE" → 1.234,50 €.
    locale: str = "en"
    # Web push: the site's VAPID key pair (`storetag vapid` makes one; the private key is base64url raw
    # P-256), the contact the push services see, and where the shop hosts the one-line service worker.
    vapid_public_key: str = ""
    vapid_private_key: str = ""
    vapid_subject: str = ""
    push_worker: str = "/storetag-sw.js"
    # Free-form values rules read through visit.site.settings.
    settings: dict[str, Any] = {}

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if self.discount_url and "{code}" not in self.discount_url:
            raise ValueError("discount_url must contain {code}")
        if self.discount_url and not self.discount_url.startswith(("https://", "http://", "/")):
            raise ValueError("discount_url must be an http(s) URL or a path on the shop")

    def allows_origin(self, origin: str | None, extra: tuple[str, ...] = ()) -> bool:
        # Browsers always send Origin on cross-origin POSTs; a request without one is not from a page.
        return origin is None or origin in self.origins or origin in extra

    def verifies_customer(self, customer_id: str, signature: str) -> bool:
        if self.trust_unsigned_identify:
            return True
        if not self.secret or not signature:
            return False
        expected = hmac.new(self.secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())


class SitesFile(msgspec.Struct, forbid_unknown_fields=True):
    sites: dict[SiteKey, Site]


def load_sites(path: Path) -> dict[str, Site]:
    """Reads and validates the sites file; a bad file stops start-up with the field that is wrong."""
    try:
        raw = tomllib.loads(path.read_text())
        parsed = msgspec.convert(raw, SitesFile)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SystemExit(f"storetag: cannot load sites from {path}: {exc}") from exc
    return {key: msgspec.structs.replace(site, key=key) for key, site in parsed.sites.items()}
