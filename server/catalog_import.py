"""Catalog imports: JSON lines or CSV (comma, semicolon or tab) with merchant-feed fields, into the catalog.

Each row becomes a CatalogRow or a refusal naming its line; one bad row never stops the others. Columns
that are not catalog fields become the product's free attributes. Google-feed names are understood too
(`link`, `image_link`, `product_type`), as are prices written like `12.50 EUR`. Used by the admin API
and `storetag catalog import`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from server import protocol as p
from server.catalog import MAX_PRODUCTS, Catalog, from_row

CHUNK = 500

FIELDS = frozenset(p.CatalogRow.__struct_fields__)
ALIASES = {"link": "url", "image_link": "image_url", "product_type": "category", "name": "title"}
_NOT_HTTP = re.compile(r"Expected `str` matching regex '\^https\?://[^']*'")
_PRICE_WITH_CURRENCY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s+([A-Z]{3})\s*$")


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    attributes = dict(raw.pop("attributes", None) or {})
    for name, value in raw.items():
        key = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
        if value is None or value == "":
            continue
        if key in FIELDS:
            row[key] = value
        else:
            attributes[key] = str(value)
    for field in ("price", "sale_price"):
        match = _PRICE_WITH_CURRENCY.match(str(row.get(field, "")))
        if match:
            row[field] = match[1]
            row.setdefault("currency", match[2])
    if isinstance(row.get("availability"), str):
        row["availability"] = row["availability"].strip().lower().replace(" ", "_")
    if attributes:
        row["attributes"] = attributes
    return row


def _row(line: int, raw: Any) -> p.CatalogRow | Refusal:
    if not isinstance(raw, dict):
        return Refusal(line, "a row must be an object")
    if not raw.get("id"):
        return Refusal(line, "missing id")
    try:
        return msgspec.convert(_normalised(raw), p.CatalogRow, strict=False)
    except msgspec.ValidationError as exc:
        return Refusal(line, _NOT_HTTP.sub("not an http(s) URL", str(exc)))


def read_json_lines(lines: Iterable[str]) -> Iterator[p.CatalogRow | Refusal]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            yield Refusal(number, f"not JSON: {exc}")
            continue
        yield _row(number, raw)


def read_csv(lines: Iterable[str]) -> Iterator[p.CatalogRow | Refusal]:
    lines = iter(lines)
    header = next(lines, "")
    dialect = csv.Sniffer().sniff(header, delimiters=",;\t") if header.strip() else csv.excel
    reader = csv.DictReader(_chain(header, lines), dialect=dialect)
    for raw in reader:
        if None in raw:
            yield Refusal(reader.line_num, "more cells than the header has columns")
        elif any(value for value in raw.values()):
            yield _row(reader.line_num, dict(raw))


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def read_catalog(lines: Iterable[str], filename: str = "") -> Iterator[p.CatalogRow | Refusal]:
    """Rows from a catalog file; CSV when the name ends in .csv or .tsv, else JSON lines."""
    if filename.lower().endswith((".csv", ".tsv")):
        return read_csv(lines)
    return read_json_lines(lines)


async def load(
    catalog: Catalog, site: str, currency: str, rows: Iterable[p.CatalogRow | Refusal]
) -> p.CatalogReport:
    """Upserts the good rows in chunks; refuses the bad ones, and new products once the catalog is full."""
    report = p.CatalogReport(loaded=0)
    room = MAX_PRODUCTS - await catalog.size(site)
    chunk: list[p.CatalogRow] = []

    async def flush() -> None:
        nonlocal room
        known = await catalog.get(site, [row.id for row in chunk])
        fits = []
        for row in chunk:
            if row.id not in known and room <= 0:
                report.refused.append(f"{row.id}: the catalog is full ({MAX_PRODUCTS} products)")
                continue
            room -= row.id not in known
            fits.append(from_row(row, currency))
        await catalog.upsert(site, fits)
        report.loaded += len(fits)
        chunk.clear()

    for row in rows:
        if isinstance(row, Refusal):
            report.refused.append(str(row))
            continue
        chunk.append(row)
        if len(chunk) >= CHUNK:
            await flush()
    if chunk:
        await flush()
    return report
