"""Prices as a shop shows them: the amount in its currency, written the way the site's locale writes it."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency


@lru_cache(maxsize=16384)
def format_price(amount: float, currency: str, locale: str) -> str:
    """`format_price(1234.5, "EUR", "de_DE")` → "1.234,50 €"; an unknown locale or currency still reads."""
    try:
        return str(format_currency(amount, currency, locale=Locale.parse(locale.replace("-", "_"))))
    except (ValueError, UnknownLocaleError):
        return f"{amount:.2f} {currency}".strip()
