"""The demo shop's fixed catalogue: three categories, ten products, prices in euro cents."""

from __future__ import annotations

from html import escape

from msgspec import Struct


class Category(Struct, frozen=True):
    slug: str
    name: str
    blurb: str


class Product(Struct, frozen=True):
    id: str
    name: str
    price_cents: int
    category: str
    description: str
    emoji: str
    color: str

    @property
    def price(self) -> float:
        """The price in EUR, as the tag reports it."""
        return self.price_cents / 100


CATEGORIES: tuple[Category, ...] = (
    Category("kitchen", "Kitchen", "Enamel, clay and good coffee for slow mornings."),
    Category("stationery", "Stationery", "Paper and pens that make lists worth writing."),
    Category("apparel", "Apparel", "Soft, warm things made to be worn for years."),
)

PRODUCTS: tuple[Product, ...] = (
    Product(
        id="mug-blue",
        name="Blue Enamel Mug",
        price_cents=1_200,
        category="kitchen",
        description="A 350 ml enamel mug in deep lake blue. Light, tough and at home on a camp stove.",
        emoji="☕",
        color="#cfe3f7",
    ),
    Product(
        id="coffee-beans",
        name="House Coffee Beans, 250 g",
        price_cents=1_400,
        category="kitchen",
        description="Medium roast from a small roaster: chocolate, hazelnut, a little cherry.",
        emoji="🫘",
        color="#ead7c3",
    ),
    Product(
        id="teapot-clay",
        name="Clay Teapot",
        price_cents=2_900,
        category="kitchen",
        description="Hand-thrown stoneware teapot for two, with a built-in strainer.",
        emoji="🫖",
        color="#f3dccd",
    ),
    Product(
        id="pencil-set",
        name="Graphite Pencil Set",
        price_cents=800,
        category="stationery",
        description="Six cedar pencils from 4H to 6B in a kraft-paper sleeve.",
        emoji="✏️",
        color="#fbeec1",
    ),
    Product(
        id="notebook-dot",
        name="Dotted Notebook A5",
        price_cents=1_600,
        category="stationery",
        description="192 pages of 100 g/m² paper that fountain pens don't bleed through.",
        emoji="📓",
        color="#dbe7d3",
    ),
    Product(
        id="pen-brass",
        name="Brass Fountain Pen",
        price_cents=2_400,
        category="stationery",
        description="A pocket fountain pen in solid brass that darkens beautifully with use.",
        emoji="🖋️",
        color="#f0e2b6",
    ),
    Product(
        id="socks-stripe",
        name="Striped Wool Socks",
        price_cents=900,
        category="apparel",
        description="Merino-blend socks with a reinforced heel. One size, endless stripes.",
        emoji="🧦",
        color="#f6d2d9",
    ),
    Product(
        id="tote-canvas",
        name="Canvas Tote Bag",
        price_cents=1_800,
        category="apparel",
        description="Heavy organic cotton canvas with an inside pocket for keys.",
        emoji="👜",
        color="#e6e0d4",
    ),
    Product(
        id="cap-wool",
        name="Wool Cap",
        price_cents=2_400,
        category="apparel",
        description="A ribbed beanie in lambswool, warm without the itch.",
        emoji="🧢",
        color="#d6dcf3",
    ),
    Product(
        id="sweater-merino",
        name="Merino Sweater",
        price_cents=4_500,
        category="apparel",
        description="A fine-knit crew-neck sweater in undyed merino, made in Portugal.",
        emoji="🧶",
        color="#e9dcf1",
    ),
)

FEATURED_IDS: tuple[str, ...] = (
    "mug-blue",
    "notebook-dot",
    "tote-canvas",
    "teapot-clay",
    "sweater-merino",
    "pen-brass",
)

_PRODUCTS_BY_ID = {product.id: product for product in PRODUCTS}
_CATEGORIES_BY_SLUG = {category.slug: category for category in CATEGORIES}


def find_product(product_id: str) -> Product | None:
    return _PRODUCTS_BY_ID.get(product_id)


def find_category(slug: str) -> Category | None:
    return _CATEGORIES_BY_SLUG.get(slug)


def catalog_rows(shop_url: str) -> list[dict[str, object]]:
    """The catalogue as `storetag catalog import` rows, with absolute links to this shop."""
    return [
        {
            "id": product.id,
            "title": product.name,
            "price": product.price,
            "currency": "EUR",
            "url": f"{shop_url}/p/{product.id}",
            "image_url": f"{shop_url}/img/{product.id}.svg",
            "category": product.category,
            "brand": "Demo Shop",
        }
        for product in PRODUCTS
    ]


def product_image(product: Product) -> str:
    """A square SVG of the product's emoji on its colour."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200">'
        f'<rect width="200" height="200" fill="{escape(product.color)}"/>'
        f'<text x="100" y="132" font-size="96" text-anchor="middle">{escape(product.emoji)}</text></svg>'
    )


def products_in(category_slug: str) -> tuple[Product, ...]:
    return tuple(product for product in PRODUCTS if product.category == category_slug)


def featured_products() -> tuple[Product, ...]:
    return tuple(_PRODUCTS_BY_ID[product_id] for product_id in FEATURED_IDS)
