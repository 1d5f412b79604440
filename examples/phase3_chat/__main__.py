"""``make example``: serve the Phase III chat service on http://127.0.0.1:8000.

    python -m examples.phase3_chat [--host 127.0.0.1] [--port 8000] [--dbname phase3_chat]

The server is the one named by ``CHATSTORE_DSN``, else an embedded PostgreSQL 16 (gone
when the process ends). The example creates its database there when it is missing and
migrates it (a real deployment migrates in a deploy step; the app only checks). With
OPENAI_API_KEY set, the agent uses the Agents SDK's default OpenAI model; without it, the
offline demo stand-in (:mod:`.demo_model`).
"""

from __future__ import annotations

import argparse
import os

import psycopg
import uvicorn
from agents import Model, set_tracing_disabled
from psycopg import sql

from chatstore import devserver, migrations
from examples.phase3_chat.app import create_app
from examples.phase3_chat.demo_model import DemoModel


def ensure_database(server_dsn: str, dbname: str) -> str:
    """The DSN of ``dbname`` on the server, created if missing (kept if present: a
    restart on the same server continues the same conversations)."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return devserver.database_dsn(server_dsn, dbname)


def choose_model() -> Model | None:
    """None (the SDK's default OpenAI model) with OPENAI_API_KEY, else the stand-in."""
    if os.environ.get("OPENAI_API_KEY"):
        return None
    set_tracing_disabled(True)  # traces go to OpenAI, which needs the key
    return DemoModel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.phase3_chat", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dbname", default="phase3_chat")
    args = parser.parse_args(argv)

    dsn = ensure_database(devserver.server_dsn(), args.dbname)
    migrations.apply(dsn)
    model = choose_model()
    base = f"http://{args.host}:{args.port}"
    print(
        f"database: {dsn}",
        "model: "
        + ("the SDK's default OpenAI model" if model is None else "the OFFLINE DEMO STAND-IN"),
        "",
        "Try:",
        f"  curl -s -X POST {base}/api/alice/chat -H 'content-type: application/json'"
        """ -d '{"message": "add buy milk"}'""",
        f"  curl -s {base}/api/alice/conversations",
        f"  API docs: {base}/docs",
        "The same tools over MCP (stdio), on this database:",
        f'  CHATSTORE_DSN="{dsn}" python -m examples.phase3_chat.mcp_server',
        "",
        sep="\n",
        flush=True,
    )
    uvicorn.run(create_app(dsn, model=model), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
