"""What people run: the ``channels`` command, the node and devnet daemons' entry points, and the
node's JSON-RPC control socket (server and client).

``cli`` is the entry point; ``node_commands``, ``devnet_commands`` and ``demo_command`` add its
command groups; ``node_daemon`` runs a node in the foreground; ``control_server`` serves
``DIR/rpc.sock`` and ``control_client`` calls it. Everything here is a thin shell over the library.
"""
