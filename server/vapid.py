"""VAPID (RFC 8292): a site's key pair, and the signed Authorization header its pushes carry.

py-vapid makes the keys and signs the JWT; signing costs an ECDSA operation, so a header is made once per
push service (audience) and reused until an hour before it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from py_vapid.utils import b64urldecode, b64urlencode

from server.sites import Site

# Push services accept a JWT valid for at most 24 hours; 12 leaves room for clock skew.
HEADER_LIFETIME_S = 12 * 3600
RENEW_BEFORE_S = 3600
DEFAULT_SUBJECT = "mailto:webmaster@localhost"


@dataclass(frozen=True)
class KeyPair:
    public_key: str
    private_key: str


def generate_keys() -> KeyPair:
    """A new P-256 key pair, both halves base64url: the public key raw (65 bytes), the private key raw
    (32 bytes), as the sites file and the browser's applicationServerKey want them."""
    vapid = Vapid02()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return KeyPair(b64urlencode(public), b64urlencode(private))


def check_site_keys(site: Site) -> None:
    """Raises ValueError unless the site's two VAPID keys are a well-formed pair (or both absent)."""
    if not site.vapid_private_key and not site.vapid_public_key:
        return
    try:
        signer = Vapid02.from_raw(site.vapid_private_key.encode())
        public = signer.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        matches = public == b64urldecode(site.vapid_public_key.encode())
    except Exception as exc:
        raise ValueError(f"site {site.key}: vapid_private_key is not a base64url P-256 key: {exc}") from exc
    if not matches:
        raise ValueError(f"site {site.key}: vapid_public_key is not the public half of vapid_private_key")


class VapidSigner:
    """One site's signer: Authorization headers cached per audience (push service origin)."""

    def __init__(self, site: Site) -> None:
        check_site_keys(site)
        self.site = site
        self._vapid = Vapid02.from_raw(site.vapid_private_key.encode())
        self._subject = site.vapid_subject or DEFAULT_SUBJECT
        self._headers: dict[str, tuple[int, dict[str, str]]] = {}

    def headers(self, audience: str, now_s: float) -> dict[str, str]:
        cached = self._headers.get(audience)
        if cached is not None and cached[0] - RENEW_BEFORE_S > now_s:
            return cached[1]
        expires = int(now_s) + HEADER_LIFETIME_S
        claims = {"aud": audience, "exp": expires, "sub": self._subject}
        signed = cast(dict[str, str], self._vapid.sign(claims))
        self._headers[audience] = (expires, signed)
        return signed
