"""Errors of the routing package, under the package's one root (ARCHITECTURE section 9)."""

from __future__ import annotations

from ..errors import LocalProtocolError


class RoutingError(LocalProtocolError):
    """A routing request cannot be answered; nothing was changed."""


class GraphFileError(RoutingError):
    """A channel graph file is missing, unreadable or not a ``listchannels``-style graph."""


class UnknownNode(RoutingError):
    """A node named in a routing request is not in the graph (nor in the route hints)."""


class NoRoute(RoutingError):
    """No route (or no set of parts) can carry the amount under the limits asked for."""
