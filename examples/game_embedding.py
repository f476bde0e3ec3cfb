"""The game API in a program: alice opens a tic-tac-toe game for 100 (she is X), bob joins the
channel his node accepted; loopback libp2p, an in-process devnet. X wins the stake."""

import tempfile
from pathlib import Path

import trio

from channels.chain.devnet.ledger import Devnet
from channels.games import GAME_APPS, join, open_game
from channels.node import Node, load_config


async def play(name: str, node: Node, peer: Node | None, moves: list[int]) -> None:
    game = await (open_game(node, "tictactoe", peer.peer_id, stake=100) if peer else join(node, game="tictactoe"))
    while game.turn is not None:
        if game.your_turn:
            await game.move(moves.pop(0))  # a cell number; an illegal one raises InvalidTransition
        else:
            print(name, "sees", await anext(game))  # OpponentMoved(...), then GameOver(...)
    print(f"{name}:\n{game.render()}\n{game.view().status}, {'won' if game.view().you_won else 'lost'}")
    if peer is not None:
        await node.close(game.channel_id)  # the pot is paid out on the L1


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Devnet(apps=GAME_APPS) as ledger:  # the L1 knows the rules
        async with Node.open(load_config(Path(tmp, "alice")), ledger=ledger, apps=GAME_APPS) as alice, \
                Node.open(load_config(Path(tmp, "bob"), auto_accept_funding=100), ledger=ledger, apps=GAME_APPS) as bob:
            for node in (alice, bob):
                ledger.faucet_sync(node.l1_address, 1_000)
            await alice.connect(bob.addresses[0])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, "bob", bob, None, [0, 6, 5, 8])
                nursery.start_soon(play, "alice", alice, bob, [4, 2, 3, 1, 7])
            print("L1:", {n: await ledger.balance(p.l1_address) for n, p in (("alice", alice), ("bob", bob))})


if __name__ == "__main__":
    trio.run(main)
