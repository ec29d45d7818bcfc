"""A small demo shop with the Storetag tag pasted into every page, served on its own origin."""

from server.demo.shop import create_shop_app

__all__ = ["create_shop_app"]
