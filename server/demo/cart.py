"""The cart the shop keeps in a cookie: JSON of {product_id: qty}, validated on every read."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

import msgspec
from msgspec import Meta, Struct

from server.demo.catalog import Product, find_product

COOKIE_NAME = "cart"
MAX_QTY = 99

Quantity = Annotated[int, Meta(ge=1, le=MAX_QTY)]
Cart = dict[str, int]

_cart_decoder = msgspec.json.Decoder(dict[str, Quantity])


class CartLine(Struct, frozen=True):
    product: Product
    qty: int

    @property
    def subtotal_cents(self) -> int:
        return self.product.price_cents * self.qty


def read_cart(cookie: str | None) -> Cart:
    """The cart in the cookie, or an empty cart if the cookie is missing, malformed or names unknown items."""
    if not cookie:
        return {}
    try:
        cart = _cart_decoder.decode(unquote(cookie))
    except msgspec.DecodeError:
        return {}
    if any(find_product(product_id) is None for product_id in cart):
        return {}
    return cart


def cart_cookie_value(cart: Cart) -> str:
    """Percent-encoded compact JSON, so the value is a legal cookie value without quoting."""
    return quote(msgspec.json.encode(cart).decode(), safe="")


def add_to_cart(cart: Cart, product: Product, qty: int) -> Cart:
    return {**cart, product.id: min(cart.get(product.id, 0) + qty, MAX_QTY)}


def remove_from_cart(cart: Cart, product: Product) -> Cart:
    return {product_id: qty for product_id, qty in cart.items() if product_id != product.id}


def cart_lines(cart: Cart) -> list[CartLine]:
    lines = []
    for product_id, qty in cart.items():
        product = find_product(product_id)
        if product is not None:
            lines.append(CartLine(product, qty))
    return lines


def item_count(cart: Cart) -> int:
    return sum(cart.values())


def total_cents(lines: list[CartLine]) -> int:
    return sum(line.subtotal_cents for line in lines)


class ShippingQuote(Struct, frozen=True):
    fee_cents: int
    missing_for_free_cents: int
    progress_percent: int


def quote_shipping(subtotal_cents: int, free_over_cents: int, fee_cents: int) -> ShippingQuote:
    """Free at or above the threshold; otherwise a flat fee and how far the cart is from free shipping."""
    if subtotal_cents >= free_over_cents:
        return ShippingQuote(0, 0, 100)
    progress = subtotal_cents * 100 // free_over_cents
    return ShippingQuote(fee_cents, free_over_cents - subtotal_cents, progress)
