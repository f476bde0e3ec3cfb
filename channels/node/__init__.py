"""The node: the imperative shell that runs channel cores over a network and an L1."""

from .config import NodeConfig, load_config
from .engine import ChannelNotOpened, OperationFailed, PaymentFailed
from .node import ChannelInfo, Node, PeerNotConnected

__all__ = ["ChannelInfo", "ChannelNotOpened", "Node", "NodeConfig", "OperationFailed", "PaymentFailed",
           "PeerNotConnected", "load_config"]
