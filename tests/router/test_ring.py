"""Consistent hashing with bounded loads, and the keys requests are routed by."""

from __future__ import annotations

import json
from collections import Counter

from corral.router.keys import route_key
from corral.router.ring import HashRing

NODES = ["http://a:11434", "http://b:11434", "http://c:11434"]


def test_a_key_sticks_and_keys_spread() -> None:
    ring = HashRing(NODES)
    idle = dict.fromkeys(NODES, 0)
    picks = [ring.pick(f"conversation {i}", idle) for i in range(300)]
    assert all(ring.pick(f"conversation {i}", idle) == p for i, p in enumerate(picks))
    spread = Counter(picks)
    assert set(spread) == set(NODES) and min(spread.values()) > 60  # roughly a third each
    # a ring over the same replicas in another order (another router process) agrees
    assert HashRing(list(reversed(NODES))).pick("conversation 7", idle) == picks[7]


def test_a_loaded_replica_passes_its_keys_on() -> None:
    ring = HashRing(NODES)
    home = ring.pick("k", dict.fromkeys(NODES, 0))
    load = {**dict.fromkeys(NODES, 0), home: 3}  # bound: ceil(1.25 * 4 / 3) = 2
    moved = ring.pick("k", load)
    assert moved != home
    assert ring.pick("k", load, among=[home]) == home  # the only one left takes it anyway


def test_turn_two_routes_like_turn_one() -> None:
    turn1 = {"model": "m", "messages": [{"role": "system", "content": "S"},
                                        {"role": "user", "content": "hello"}]}  # fmt: skip
    turn2 = {**turn1, "messages": [*turn1["messages"], {"role": "assistant", "content": "hi"},
                                   {"role": "user", "content": "and then?"}]}  # fmt: skip
    one, two = route_key(json.dumps(turn1).encode()), route_key(json.dumps(turn2).encode())
    assert (one.model, one.prefix) == (two.model, two.prefix)
    other = {**turn1, "messages": [{"role": "user", "content": "another chat"}]}
    assert route_key(json.dumps(other).encode()) != route_key(json.dumps(turn1).encode())
    blocks = {
        "model": "m",
        "system": "S",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
    }
    assert route_key(json.dumps(blocks).encode()).prefix.endswith("user:hello")
    responses = {"model": "m", "input": "x", "previous_response_id": "resp_1"}
    assert route_key(json.dumps(responses).encode()).previous_response == "resp_1"
    assert route_key(b"not json").model == ""


def test_a_new_key_goes_to_the_least_loaded_and_ties_go_home() -> None:
    ring = HashRing(NODES)
    idle = dict.fromkeys(NODES, 0)
    assert all(ring.least_loaded(f"k{i}", idle) == ring.pick(f"k{i}", idle) for i in range(50))
    home = ring.pick("k", idle)
    others = [n for n in NODES if n != home]
    busy = {home: 1, others[0]: 1, others[1]: 0}
    assert ring.least_loaded("k", busy) == others[1]  # within CHWBL's bound, yet not idle
    assert ring.pick("k", busy) == home


def test_only_a_conversation_with_no_answer_is_a_first_turn() -> None:
    def first(body: dict[str, object]) -> bool:
        return route_key(json.dumps(body).encode()).first_turn

    user = {"role": "user", "content": "hi"}
    assert first({"model": "m", "messages": [{"role": "system", "content": "S"}, user]})
    assert not first(
        {"model": "m", "messages": [user, {"role": "assistant", "content": "yo"}, user]}
    )
    assert first({"model": "m", "prompt": "Once upon a time"})
    assert not first({"model": "m", "prompt": "and then", "context": [1, 2, 3]})
    assert not first({"model": "m", "input": "x", "previous_response_id": "resp_1"})
    call = {"type": "function_call_output", "call_id": "c", "output": "18 C"}
    assert not first({"model": "m", "input": [user, call]})
