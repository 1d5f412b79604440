"""search_messages against the ILIKE scan peers use, at 1M messages (issue 11 item 2).

    .venv/bin/python -m bench.search [--messages 1000000] [--keep]

Loads a scratch database ``chatstore_search_bench`` on CHATSTORE_DSN's server (else the
embedded one) up to migration 0012, with COPY as bench/loader.py does (message lengths
of bench/content.py, words drawn from a Zipf vocabulary so that terms range from the
commonest to the rarest), then applies 0014 (the search index, built CONCURRENTLY: its
build time is printed). Two searchers own part of the table: ``search-10k`` (10,000
messages) and ``search-100k`` (100,000); ordinary users own the rest.

For each searcher and term (rare, uncommon, common, a phrase, the commonest word) it
prints the median of ``search_messages`` (first page of 20, snippets included) and of
the ILIKE scan (``content ILIKE '%term%'`` on the same user's messages, newest 20
first), each measured ``--rounds`` times, interleaved; then EXPLAIN (ANALYZE, BUFFERS)
of two searches (docs/schema.md), and what the index costs an append. It drops the
database at the end unless ``--keep`` (``--reuse`` measures a kept one again).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from typing import Any

import psycopg

from bench.content import TextSource
from bench.loader import Loader, PlannedConversation
from chatstore import _core, devserver, migrations, queries
from chatstore._sql import QUERIES

DBNAME = "chatstore_search_bench"
SEARCHERS = {"search-10k": 10_000, "search-100k": 100_000}
MESSAGES_PER_CONVERSATION = 200

# The head of the vocabulary: English function words and chat words, the commonest.
_HEAD_TEXT = (
    "the a of to and in is it you that for on with as are this be can your have not "
    "or will from by at an if but what all so do use when which they more one how "
    "about query index table conversation message model answer question example code "
    "function return value error because should would could please thanks python "
    "postgres data time first then also here there just like need want make sure"
)
_HEAD = _HEAD_TEXT.split()
# Some words outside ASCII, spread over the vocabulary (unicode in the index).
_ACCENTED = ["café", "naïve", "über", "straße", "привет", "数据库", "señor", "ça"]
_SYLLABLE_TEXT = "ka ri to mo na shi ve lo qua zen dor fi pe lu gra tes bin cor mal sen"
_SYLLABLES = _SYLLABLE_TEXT.split()


class ZipfText:
    """Text of bench/content.py's lengths whose words follow Zipf's law over 30,000
    words: a few words are in most messages, most words in very few."""

    def __init__(self, seed: int = 11, vocabulary: int = 30_000) -> None:
        rng = random.Random(seed)
        words = list(_HEAD)
        seen = set(words)
        while len(words) < vocabulary:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
            if word not in seen:
                seen.add(word)
                words.append(word)
        for i, word in enumerate(_ACCENTED):
            words.insert(200 + 500 * i, word)
        weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
        picks = rng.choices(words, cum_weights=weights, k=1_500_000)
        parts = []
        for start in range(0, len(picks), 12):
            sentence = " ".join(picks[start : start + 12])
            parts.append(sentence[0].upper() + sentence[1:] + rng.choice(".?!,") + " ")
        self._corpus = "".join(parts)
        self._lengths = TextSource(seed)
        self._rng = random.Random(seed + 1)
        self.words = words

    def text(self, role: str) -> str:
        n = self._lengths.length(role)
        start = self._rng.randrange(len(self._corpus) - n - 1)
        while self._corpus[start] == " ":
            start += 1
        return self._corpus[start : start + n].strip() or "ok"


def load(dsn: str, total: int) -> dict[str, float]:
    """Migrate to 0012, load ``total`` messages, then apply the rest one by one; the
    seconds each of those took (0014 builds the search index)."""
    migrations.apply(dsn, up_to="chatstore_0012_agent_items")
    with psycopg.connect(dsn, autocommit=True) as conn:
        loader = Loader(conn, peers=False)
        loader._text = ZipfText()  # type: ignore[assignment]
        plans = [
            PlannedConversation(user, MESSAGES_PER_CONVERSATION)
            for user, count in SEARCHERS.items()
            for _ in range(count // MESSAGES_PER_CONVERSATION)
        ]
        started = time.perf_counter()
        loader._load(plans, extra_users=list(SEARCHERS))
        report = loader.grow_to(total)
        log(f"loaded {report.total_messages:,} messages in {time.perf_counter() - started:.0f} s")
    seconds = {}
    for pending in [s.id for s in migrations.status(dsn) if not s.applied]:
        started = time.perf_counter()
        migrations.apply(dsn, up_to=pending)
        seconds[pending] = time.perf_counter() - started
        log(f"applied {pending} in {seconds[pending]:.1f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) messages")
    return seconds


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rare_word(dsn: str, user_id: str) -> str:
    """A word of the Zipf tail that ``user_id``'s messages hold a few times."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT word FROM ts_stat(format($$SELECT to_tsvector('simple', content)"
            " FROM messages WHERE user_id = %%L$$, %s::text))"
            " WHERE ndoc BETWEEN 3 AND 5 AND word ~ '^[a-z]{8,}$' ORDER BY word LIMIT 1",
            [user_id],
        ).fetchone()
    assert row is not None
    return str(row[0])


#: (label, search_messages query, the ILIKE conditions a peer would write)
def terms(rare: str) -> list[tuple[str, str, list[str]]]:
    return [
        (f"rare word ({rare})", rare, [f"%{rare}%"]),
        ("uncommon word (straße)", "straße", ["%straße%"]),
        ("common word (postgres)", "postgres", ["%postgres%"]),
        ('phrase ("error message")', '"error message"', ["%error message%"]),
        ("very common word (the)", "the", ["%the%"]),
    ]


ILIKE = (
    "SELECT conversation_id, seq, role, created_at, content FROM messages"
    " WHERE user_id = %s AND content ILIKE ALL (%s) ORDER BY created_at DESC LIMIT 20"
)


def measure(dsn: str, rounds: int) -> list[dict[str, Any]]:
    rare = rare_word(dsn, "search-10k")
    cases = [(user, *term) for user in SEARCHERS for term in terms(rare)]
    samples: dict[tuple[str, str], dict[str, list[float]]] = {
        (user, label): {"search": [], "ilike": []} for user, label, _, _ in cases
    }
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(rounds):
            for user, label, query, patterns in cases:
                started = time.perf_counter()
                page = queries.search_messages(conn, user_id=user, query=query)
                samples[user, label]["search"].append(time.perf_counter() - started)
                started = time.perf_counter()
                rows = conn.execute(ILIKE, [user, patterns]).fetchall()
                samples[user, label]["ilike"].append(time.perf_counter() - started)
                facts[user, label] = {"hits": len(page.items), "capped": page.capped}
                facts[user, label]["ilike_rows"] = len(rows)
        for user, label, query, patterns in cases:
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE user_id = %s AND content ILIKE ALL (%s)",
                [user, patterns],
            ).fetchone()
            facts[user, label]["ilike_matches"] = row[0] if row else 0
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE user_id = %(u)s"
                " AND chatstore_search_key(user_id, content)"
                " @@ (chatstore_search_query(%(q)s) && chatstore_search_owner(%(u)s))",
                {"u": user, "q": query},
            ).fetchone()
            facts[user, label]["matches"] = row[0] if row else 0
    results = []
    for (user, label), timing in samples.items():
        search_ms = statistics.median(timing["search"]) * 1000
        ilike_ms = statistics.median(timing["ilike"]) * 1000
        results.append(
            {
                "user": user,
                "term": label,
                "search_ms": search_ms,
                "ilike_ms": ilike_ms,
                **facts[user, label],
            }
        )
    return results


def report(results: list[dict[str, Any]], rounds: int) -> str:
    lines = [
        "| user | query | search_messages (ms) | ILIKE scan (ms) | ILIKE / search |"
        " matches (search) | matches (ILIKE) | capped |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['user']} | {r['term']} | {r['search_ms']:.1f} | {r['ilike_ms']:.1f} |"
            f" {r['ilike_ms'] / r['search_ms']:.1f}x | {r['matches']:,} | {r['ilike_matches']:,} |"
            f" {'yes' if r['capped'] else 'no'} |"
        )
    lines.append(f"\nMedians of {rounds} interleaved runs; first page of 20.")
    return "\n".join(lines)


def explain(dsn: str, user_id: str, query: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of search_messages' first page, warm."""
    params: dict[str, object] = {
        "user_id": user_id,
        "query": query,
        "cap": _core.SEARCH_CAP,
        "budget": _core.SEARCH_BUDGET,
        "newest": None,
        "before_rank": None,
        "before_conversation_id": None,
        "before_seq": None,
        "limit": 21,
    }
    statement = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + QUERIES["search_messages"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, params)  # warm the cache
        rows = conn.execute(statement, params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def append_cost(dsn: str, blocks: int = 40, per_block: int = 250) -> str:
    """What the index costs an append: single-row INSERTs of message-like text into
    tables without it, with it (pending list of 4 MB and of 512 kB), and with it updated
    in place (fastupdate off), interleaved in blocks; synchronous_commit off, so that no
    fsync hides the difference."""
    configs = {
        "no search index": None,
        "fastupdate, 4 MB pending list": "fastupdate = on",
        "fastupdate, 512 kB pending list (0014)": "fastupdate = on, gin_pending_list_limit = 512",
        "fastupdate off": "fastupdate = off",
    }
    text = ZipfText(seed=23)
    texts = [text.text("assistant" if i % 2 else "user") for i in range(blocks * per_block)]
    samples: dict[str, list[int]] = {name: [] for name in configs}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        tables = {}
        for n, (name, options) in enumerate(configs.items()):
            table = f"append_cost_{n}"
            tables[name] = table
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(
                f"CREATE TABLE {table} (user_id text, content text) WITH (autovacuum_enabled = off)"
            )
            if options:
                conn.execute(
                    f"CREATE INDEX ON {table} USING gin (chatstore_search_key(user_id, content))"
                    f" WITH ({options})"
                )
        for block in range(blocks):
            for name, table in tables.items():
                for k in range(per_block):
                    body = texts[block * per_block + k]
                    started = time.perf_counter_ns()
                    conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (f"u{k % 50}", body))
                    samples[name].append(time.perf_counter_ns() - started)
        for table in tables.values():
            conn.execute(f"DROP TABLE {table}")
    lines = [
        "| index on the table | median (ms) | mean (ms) | p99 (ms) | p99.9 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        values.sort()
        p50, p99, p999 = (values[int(len(values) * share)] / 1e6 for share in (0.5, 0.99, 0.999))
        lines.append(
            f"| {name} | {p50:.2f} | {statistics.fmean(values) / 1e6:.2f} |"
            f" {p99:.2f} | {p999:.1f} | {values[-1] / 1e6:.1f} |"
        )
    lines.append(f"\n{blocks * per_block:,} single-row INSERTs per row, interleaved.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database")
    args = parser.parse_args(argv)
    server = devserver.server_dsn()
    dsn = devserver.database_dsn(server, DBNAME)
    if not args.reuse:
        devserver.create_database(server, DBNAME)
    try:
        if not args.reuse:
            for migration, seconds in load(dsn, args.messages).items():
                print(f"{migration}: {seconds:.1f} s")
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT version(), pg_size_pretty(pg_relation_size('messages_search_idx')),"
                " pg_size_pretty(pg_table_size('messages')), (SELECT count(*) FROM messages)"
            ).fetchone()
        print(f"{row}\n" if row else "")
        print(report(measure(dsn, args.rounds), args.rounds), end="\n\n")
        for user_id, query in (("search-100k", "postgres"), ("search-10k", "straße")):
            print(f"-- {user_id}: {query}\n{explain(dsn, user_id, query)}\n")
        print(append_cost(dsn))
    finally:
        if not args.keep:
            devserver.drop_database(server, DBNAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
