"""Pathfinding over the channel graph: single routes, multi-part splits, retries, the benchmark.

Pure and deterministic (time is passed in; nothing reads a clock, the network or the disk)
except ``loader``, which reads graph files. Modules: ``graph`` (the compact graph and route
hints), ``loader`` (listchannels JSON, optionally .xz), ``scorer`` (success probabilities
learned from attempts, with decay), ``pathfind`` (Dijkstra from the payee back to the
payer), ``mpp`` (splitting a payment into parts), ``attempts`` (one payment's rounds of
attempts and retries), ``simulate`` (the ``channels bench-route`` replay).
"""

from .attempts import Payment
from .errors import GraphFileError, NoRoute, RoutingError, UnknownNode
from .graph import Edge, Graph, HintHop
from .mpp import SplitParams, split
from .pathfind import Hop, Query, Route, RouteParams, candidate_routes, find_route
from .scorer import Scorer, ScoringParams

__all__ = ["Edge", "Graph", "GraphFileError", "HintHop", "Hop", "NoRoute", "Payment", "Query", "Route",
           "RouteParams", "RoutingError", "Scorer", "ScoringParams", "SplitParams", "UnknownNode",
           "candidate_routes", "find_route", "split"]
