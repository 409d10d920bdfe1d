"""How the Library page finds and orders models: a name search and the sort choices. No Streamlit import."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .library import Model


class Order(Enum):
    NEWEST = "newest"
    OLDEST = "oldest"
    NAME = "name"
    SIZE = "size"


#: The sort choices as the merchant reads them ("size" says which size it means).
ORDER_LABELS = {
    Order.NEWEST: "Newest first",
    Order.OLDEST: "Oldest first",
    Order.NAME: "Name (A to Z)",
    Order.SIZE: "Biggest first (longest side)",
}


def matches(model: Model, query: str) -> bool:
    """Every word of the query appears in the name, ignoring case."""
    name = model.name.casefold()
    return all(word in name for word in query.casefold().split())


def arrange(models: Iterable[Model], query: str = "", order: Order = Order.NEWEST) -> list[Model]:
    """The models whose name matches `query`, in `order` (ties: newest first)."""
    found = sorted((m for m in models if matches(m, query)), key=lambda m: m.created, reverse=True)
    if order is Order.OLDEST:
        return found[::-1]
    if order is Order.NAME:
        return sorted(found, key=lambda m: m.name.casefold())
    if order is Order.SIZE:
        return sorted(found, key=lambda m: max(m.dimensions_m), reverse=True)
    return found
