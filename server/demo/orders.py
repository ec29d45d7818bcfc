"""Placing an order from the cart, and the `last_order` cookie the thank-you page reads it back from."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote, unquote

import msgspec
from msgspec import Meta, Struct

from server.demo.cart import CartLine, Quantity, total_cents
from server.demo.catalog import Product, find_product

COOKIE_NAME = "last_order"

OrderId = Annotated[str, Meta(pattern=r"^DS-[0-9A-F]{8}$")]
Cents = Annotated[int, Meta(ge=0)]
DiscountCode = Annotated[str, Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{2,63}$")]


class OrderItem(Struct, frozen=True):
    id: str
    qty: Quantity
    price_cents: Cents


class Order(Struct, frozen=True):
    id: OrderId
    value_cents: Cents
    items: tuple[OrderItem, ...]
    # The discount code the visitor applied, reported with the purchase so Storetag can redeem it.
    code: DiscountCode | None = None

    @property
    def value(self) -> float:
        return self.value_cents / 100


class PlacedLine(Struct, frozen=True):
    """An order item with its catalogue product, for display and for the purchase event."""

    product: Product
    qty: int
    price_cents: int


_order_decoder = msgspec.json.Decoder(Order)


def place_order(lines: list[CartLine], code: str | None = None) -> Order:
    items = tuple(OrderItem(line.product.id, line.qty, line.product.price_cents) for line in lines)
    return Order(f"DS-{secrets.token_hex(4).upper()}", total_cents(lines), items, code)


def valid_code(code: str | None) -> str | None:
    """A discount code as the shop accepts it in a URL or cookie, or None."""
    try:
        return msgspec.convert(code, DiscountCode) if code else None
    except msgspec.ValidationError:
        return None


def order_cookie_value(order: Order) -> str:
    return quote(msgspec.json.encode(order).decode(), safe="")


def read_order(cookie: str | None) -> Order | None:
    if not cookie:
        return None
    try:
        return _order_decoder.decode(unquote(cookie))
    except msgspec.DecodeError:
        return None


def placed_lines(order: Order) -> list[PlacedLine] | None:
    """The order's items joined with the catalogue, or None if an item is no longer in it."""
    lines = []
    for item in order.items:
        product = find_product(item.id)
        if product is None:
            return None
        lines.append(PlacedLine(product, item.qty, item.price_cents))
    return lines
