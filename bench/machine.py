"""What the figures were measured on: CPU, memory, versions, server settings."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

PACKAGES = (
    "psycopg",
    "psycopg-pool",
    "pydantic",
    "sqlalchemy",
    "sqlmodel",
    "langchain-postgres",
    "langchain-core",
    "openai-agents",
    "asyncpg",
    "pgserver",
)
SETTINGS = ("synchronous_commit", "fsync", "shared_buffers", "work_mem", "jit")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0
    )
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu_model": model,
        "vcpus": cpuinfo.count("processor\t:") or None,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


def server(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SELECT version()").fetchone()
        info: dict[str, Any] = {"version": version[0] if version else "?"}
        for name in SETTINGS:
            row = conn.execute(f"SHOW {name}").fetchone()  # constant names
            info[name] = row[0] if row else "?"
    return info


def data_size(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None

        return {
            "users": one("SELECT count(*) FROM users"),
            "conversations": one("SELECT count(*) FROM conversations"),
            "messages": one("SELECT count(*) FROM messages"),
            "database": one("SELECT pg_size_pretty(pg_database_size(current_database()))"),
            "messages_avg_chars": round(
                float(one("SELECT avg(char_length(content)) FROM messages") or 0)
            ),
        }
