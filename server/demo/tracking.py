"""The props of the events the shop's pages report through the tag (see server/protocol.py)."""

from __future__ import annotations

from typing import Any

from server.demo.catalog import Category, Product
from server.demo.orders import Order, PlacedLine

Props = dict[str, Any]


def product_props(product: Product) -> Props:
    return {
        "id": product.id,
        "name": product.name,
        "price": product.price,
        "category": product.category,
        # Relative URLs are resolved against the page's; recommendations link and show these.
        "url": f"/p/{product.id}",
        "image_url": f"/img/{product.id}.svg",
    }


def cart_line_props(product: Product, qty: int) -> Props:
    return {
        "id": product.id,
        "qty": qty,
        "price": product.price,
        "name": product.name,
        "category": product.category,
    }


def category_props(category: Category) -> Props:
    return {"id": category.slug}


def purchase_props(order: Order, lines: list[PlacedLine]) -> Props:
    items = [{**cart_line_props(line.product, line.qty), "price": line.price_cents / 100} for line in lines]
    props: Props = {"order_id": order.id, "value": order.value, "items": items}
    if order.code:
        props["code"] = order.code
    return props
