"""SQLAlchemy engines on psycopg 3 for a libpq DSN (unix sockets included)."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sqlalchemy_url(dsn: str) -> URL:
    """``postgresql+psycopg`` URL carrying every libpq parameter of ``dsn``."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    database = params.pop("dbname", None)
    user = params.pop("user", None)
    password = params.pop("password", None) or None
    return URL.create(
        "postgresql+psycopg", username=user, password=password, database=database, query=params
    )


def engine(dsn: str, **kwargs: Any) -> Engine:
    return create_engine(sqlalchemy_url(dsn), **kwargs)


def async_engine(dsn: str, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(sqlalchemy_url(dsn), **kwargs)


def asyncpg_engine(dsn: str, **kwargs: Any) -> AsyncEngine:
    """``postgresql+asyncpg`` engine for a libpq DSN, the driver the Agents SDK's docs show.

    asyncpg takes no libpq string: host (a socket directory too), port, user, password
    and database go in as keywords, ``application_name`` as a server setting (the bench
    pins backends by it).
    """
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    connect: dict[str, Any] = {}
    for libpq, asyncpg in (
        ("host", "host"),
        ("port", "port"),
        ("user", "user"),
        ("password", "password"),
        ("dbname", "database"),
    ):
        if params.get(libpq):
            connect[asyncpg] = int(params[libpq]) if libpq == "port" else params[libpq]
    if "application_name" in params:
        connect["server_settings"] = {"application_name": params["application_name"]}
    connect_args = {**connect, **kwargs.pop("connect_args", {})}
    return create_async_engine("postgresql+asyncpg://", connect_args=connect_args, **kwargs)
