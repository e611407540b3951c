"""LangGraph baseline for benchmark 5: six trivial nodes, run to completion for N tickets.

Checkpointers: memory (InMemorySaver) or postgres (AsyncPostgresSaver, a checkpoint committed
after every step: durability="sync", the same promise ticketflow's durable benchmark keeps).
Prints one JSON line: {"checkpointer", "tickets", "concurrency", "tickets_per_second"}.
"""

import argparse
import asyncio
import json
import time
import uuid
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

STEPS = ["classify", "extract", "research", "draft", "review", "finalize"]


class Ticket(TypedDict):
    body: str
    done: list


def node(name):
    def run(state: Ticket) -> dict:
        return {"done": state["done"] + [name]}

    return run


def graph() -> StateGraph:
    g = StateGraph(Ticket)
    for name in STEPS:
        g.add_node(name, node(name))
    g.add_edge(START, STEPS[0])
    for a, b in zip(STEPS, STEPS[1:]):
        g.add_edge(a, b)
    g.add_edge(STEPS[-1], END)
    return g


async def run(app, tickets: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            await app.ainvoke({"body": f"ticket {i}: charged twice for ORD-55812", "done": []}, config, durability="sync")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(tickets)))
    return tickets / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpointer", choices=["memory", "postgres"], default="postgres")
    parser.add_argument("--tickets", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.checkpointer == "memory":
        rate = await run(graph().compile(checkpointer=InMemorySaver()), args.tickets, args.concurrency)
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg_pool import AsyncConnectionPool

        pool_kwargs = {"autocommit": True, "prepare_threshold": 0}
        async with AsyncConnectionPool(args.url, max_size=args.concurrency, kwargs=pool_kwargs, open=False) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            rate = await run(graph().compile(checkpointer=saver), args.tickets, args.concurrency)
    print(json.dumps({"checkpointer": args.checkpointer, "tickets": args.tickets,
                      "concurrency": args.concurrency, "tickets_per_second": rate}))


if __name__ == "__main__":
    asyncio.run(main())
