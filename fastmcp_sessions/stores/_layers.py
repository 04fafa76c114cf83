"""The layers of a store, outermost first: views and wrappers down to the backend.

A wrapper (``NamespacedStore``, ``EncryptedStore``, ``FencedStore``...) keeps the store it
wraps in ``.inner``; the backend is the first store without one. Everything that needs to
see through the wrappers (which bus, which event store, which key file, whether the data
crosses a network) walks the chain here, so a new wrapper only has to set ``.inner``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from fastmcp_sessions.stores.base import Store

__all__ = ["MAX_DEPTH", "backend_of", "layer_of", "layers"]

S = TypeVar("S", bound=Store)

# Real chains are a few layers deep; the bound stops a chain that loops back on itself
# (a view set as its own inner by mistake) from hanging the caller.
MAX_DEPTH = 16


def layers(store: Store) -> Iterator[Store]:
    """``store`` and every store it wraps (through ``.inner``), outermost first, backend last."""
    seen: set[int] = set()
    current: object = store
    while isinstance(current, Store) and id(current) not in seen and len(seen) <= MAX_DEPTH:
        seen.add(id(current))
        yield current
        current = getattr(current, "inner", None)


def layer_of(store: Store, kind: type[S]) -> S | None:
    """The outermost layer of ``store`` that is a ``kind``, or ``None`` when none is."""
    for layer in layers(store):
        if isinstance(layer, kind):
            return layer
    return None


def backend_of(store: Store) -> Store:
    """The store at the bottom of ``store``'s wrappers: the one that talks to the backend."""
    return list(layers(store))[-1]
