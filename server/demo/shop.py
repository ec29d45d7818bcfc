"""The demo shop app: catalogue pages, a cookie cart and a fake checkout, each page carrying the tag."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from server.demo import cart as carts
from server.demo import orders
from server.demo.catalog import (
    CATEGORIES,
    Product,
    featured_products,
    find_category,
    find_product,
    product_image,
    products_in,
)
from server.demo.tracking import cart_line_props, category_props, product_props, purchase_props

TEMPLATES_DIR = Path(__file__).parent / "templates"
SHIPPING_FEE_CENTS = 490
CART_MAX_AGE = 30 * 24 * 3600
ORDER_MAX_AGE = 24 * 3600
DISCOUNT_COOKIE = "discount"
MAX_FORM_BYTES = 8 * 1024
RELATED_PRODUCTS = 3


def create_shop_app(
    tag_src: str, site_name: str = "Demo Shop", free_shipping_over: float = 50.0, worker_src: str = ""
) -> Starlette:
    shop = Storefront(tag_src, site_name, round(free_shipping_over * 100), worker_src)
    routes = [
        Route("/", shop.home),
        Route("/c/{slug}", shop.category),
        Route("/p/{product_id}", shop.product),
        Route("/cart", shop.cart),
        Route("/cart/add", shop.add_to_cart, methods=["POST"]),
        Route("/cart/remove", shop.remove_from_cart, methods=["POST"]),
        Route("/checkout", shop.checkout),
        Route("/checkout", shop.place_order, methods=["POST"]),
        Route("/thank-you", shop.thank_you),
        Route("/discount/{code}", shop.apply_discount),
        Route("/img/{product_id}.svg", shop.image),
        Route("/storetag-sw.js", shop.push_worker),
    ]
    return Starlette(
        routes=routes, exception_handlers={HTTPException: shop.error}, max_body_size=MAX_FORM_BYTES
    )


def euros(cents: int) -> str:
    return f"€{cents // 100}.{cents % 100:02d}"


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["eur"] = euros
    return env


async def read_form(request: Request) -> dict[str, str]:
    """An url-encoded form body, first value of each field; parsed here so the shop needs no multipart lib."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = parse_qs(body, max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}


def form_product(form: dict[str, str]) -> Product:
    product = find_product(form.get("id", ""))
    if product is None:
        raise HTTPException(404, "That product isn't in our catalogue.")
    return product


def form_quantity(form: dict[str, str]) -> int:
    raw = form.get("qty", "1").strip()
    if not raw.isdecimal() or not 1 <= int(raw) <= carts.MAX_QTY:
        raise HTTPException(400, f"Quantity must be a whole number from 1 to {carts.MAX_QTY}.")
    return int(raw)


def request_cart(request: Request) -> carts.Cart:
    return carts.read_cart(request.cookies.get(carts.COOKIE_NAME))


def redirect_with_cart(url: str, cart: carts.Cart) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if cart:
        response.set_cookie(
            carts.COOKIE_NAME,
            carts.cart_cookie_value(cart),
            max_age=CART_MAX_AGE,
            httponly=True,
            samesite="lax",
        )
    else:
        response.delete_cookie(carts.COOKIE_NAME, httponly=True, samesite="lax")
    return response


class Storefront:
    def __init__(self, tag_src: str, site_name: str, free_shipping_over_cents: int, worker_src: str) -> None:
        self.tag_src = tag_src
        self.worker_src = worker_src
        self.site_name = site_name
        self.free_shipping_over_cents = free_shipping_over_cents
        self.templates = template_environment()

    def render(
        self, request: Request, template: str, page: str, status_code: int = 200, **context: Any
    ) -> Response:
        cart = request_cart(request)
        html = self.templates.get_template(template).render(
            tag_src=self.tag_src,
            site_name=self.site_name,
            free_shipping_over_cents=self.free_shipping_over_cents,
            categories=CATEGORIES,
            cart_count=carts.item_count(cart),
            page=page,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    async def home(self, request: Request) -> Response:
        return self.render(request, "home.html", "home", featured=featured_products())

    async def category(self, request: Request) -> Response:
        category = find_category(request.path_params["slug"])
        if category is None:
            raise HTTPException(404, "We don't have that category.")
        return self.render(
            request,
            "category.html",
            "category",
            category=category,
            products=products_in(category.slug),
            event_props=category_props(category),
        )

    async def product(self, request: Request) -> Response:
        product = find_product(request.path_params["product_id"])
        if product is None:
            raise HTTPException(404, "That product isn't in our catalogue.")
        related = [other for other in products_in(product.category) if other != product]
        return self.render(
            request,
            "product.html",
            "product",
            product=product,
            category=find_category(product.category),
            related=related[:RELATED_PRODUCTS],
            event_props=product_props(product),
            cart_add_props=cart_line_props(product, 1),
        )

    async def cart(self, request: Request) -> Response:
        lines = carts.cart_lines(request_cart(request))
        subtotal = carts.total_cents(lines)
        return self.render(
            request,
            "cart.html",
            "cart",
            rows=[(line, cart_line_props(line.product, line.qty)) for line in lines],
            discount_code=orders.valid_code(request.cookies.get(DISCOUNT_COOKIE)),
            subtotal_cents=subtotal,
            shipping=carts.quote_shipping(subtotal, self.free_shipping_over_cents, SHIPPING_FEE_CENTS),
        )

    async def add_to_cart(self, request: Request) -> Response:
        form = await read_form(request)
        product, qty = form_product(form), form_quantity(form)
        cart = request_cart(request)
        return redirect_with_cart("/cart", carts.add_to_cart(cart, product, qty))

    async def remove_from_cart(self, request: Request) -> Response:
        product = form_product(await read_form(request))
        cart = request_cart(request)
        return redirect_with_cart("/cart", carts.remove_from_cart(cart, product))

    async def checkout(self, request: Request) -> Response:
        lines = carts.cart_lines(request_cart(request))
        if not lines:
            return RedirectResponse("/cart", status_code=303)
        subtotal = carts.total_cents(lines)
        return self.render(
            request,
            "checkout.html",
            "checkout",
            lines=lines,
            subtotal_cents=subtotal,
            shipping=carts.quote_shipping(subtotal, self.free_shipping_over_cents, SHIPPING_FEE_CENTS),
        )

    async def apply_discount(self, request: Request) -> Response:
        """A link like /discount/CODE, as Shopify has: the code waits in a cookie until checkout."""
        code = orders.valid_code(request.path_params["code"].upper())
        if code is None:
            raise HTTPException(400, "That is not a discount code.")
        response = RedirectResponse("/cart", status_code=303)
        response.set_cookie(DISCOUNT_COOKIE, code, max_age=86400, httponly=True, samesite="lax")
        return response

    async def place_order(self, request: Request) -> Response:
        lines = carts.cart_lines(request_cart(request))
        if not lines:
            return RedirectResponse("/cart", status_code=303)
        order = orders.place_order(lines, orders.valid_code(request.cookies.get(DISCOUNT_COOKIE)))
        query = urlencode({"order": order.id, "value": f"{order.value:.2f}"})
        response = redirect_with_cart(f"/thank-you?{query}", {})
        response.set_cookie(
            orders.COOKIE_NAME,
            orders.order_cookie_value(order),
            max_age=ORDER_MAX_AGE,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(DISCOUNT_COOKIE, httponly=True, samesite="lax")
        return response

    async def thank_you(self, request: Request) -> Response:
        order = orders.read_order(request.cookies.get(orders.COOKIE_NAME))
        lines = orders.placed_lines(order) if order else None
        if order is None or lines is None or order.id != request.query_params.get("order"):
            raise HTTPException(404, "We couldn't find that order in this browser.")
        return self.render(
            request,
            "thank_you.html",
            "thank_you",
            order=order,
            lines=lines,
            event_props=purchase_props(order, lines),
        )

    async def image(self, request: Request) -> Response:
        product = find_product(request.path_params["product_id"])
        if product is None:
            raise HTTPException(404, "That product isn't in our catalogue.")
        headers = {"Cache-Control": "public, max-age=86400"}
        return Response(product_image(product), media_type="image/svg+xml", headers=headers)

    async def push_worker(self, request: Request) -> Response:
        """The one-line service worker file every shop hosts at its root for web push."""
        if not self.worker_src:
            raise HTTPException(404, "This shop has no web push.")
        script = f"importScripts({json.dumps(self.worker_src)});\n"
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        default_detail = HTTPStatus(exc.status_code).phrase
        message = (
            "Check the address, or start again from the shop." if exc.detail == default_detail else exc.detail
        )
        response = self.render(
            request, "error.html", "error", status_code=exc.status_code, error=exc, message=message
        )
        response.headers.update(exc.headers or {})
        return response
