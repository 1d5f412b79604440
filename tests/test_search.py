"""search_messages: full-text search over one user's messages (migration 0014).

Web-search syntax (words, "phrases", OR, -exclusion), ranked best first, keyset-paged,
with the conversation, the message's number and a snippet whose found words are marked
by offsets. Runs on PostgreSQL and, unchanged, on the Citus cluster (tests/test_citus.py).
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from chatstore import _core
from chatstore.errors import InvalidInput, NotFound
from chatstore.models import SearchHit, SearchPage
from tests import _helpers
from tests._helpers import Store, snapshot, user
from tests.test_api_records import assert_valid

store = _helpers.store


async def conversation(store: Store, user_id: str, *contents: str, title: str = "t") -> int:
    """A conversation of ``user_id`` holding ``contents`` (user, assistant, user, ...)."""
    made = await store.create_conversation(user_id=user_id, title=title)
    if contents:
        roles = ("user", "assistant")
        await store.append_messages(
            user_id=user_id,
            conversation_id=made.id,
            messages=[(roles[i % 2], text) for i, text in enumerate(contents)],
        )
    return int(made.id)


async def found(store: Store, query: str, user_id: str = "ann", **kw: Any) -> list[str]:
    """The snippets of the first page: the whole text of short messages."""
    page = await store.search_messages(user_id=user_id, query=query, **kw)
    return [hit.snippet for hit in page.items]


async def walk(
    store: Store, user_id: str, query: str, limit: int, between: Any = None
) -> list[SearchHit]:
    seen: list[SearchHit] = []
    cursor = None
    while True:
        page = await store.search_messages(user_id=user_id, query=query, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += page.items
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor
        if between is not None:
            await between()


def order_key(hit: SearchHit) -> tuple[float, int, int]:
    return (hit.rank, hit.conversation_id, hit.seq)


# --- what matches ------------------------------------------------------------------------


async def test_words_match_whole_whatever_their_case_and_every_word_must_occur(
    store: Store,
) -> None:
    await user(store, "ann")
    await conversation(
        store,
        "ann",
        "Postgres is fast",
        "postgres indexes are fast too",
        "MySQL is elsewhere",
        "postgresql is a longer word",
    )
    assert sorted(await found(store, "postgres")) == [
        "Postgres is fast",
        "postgres indexes are fast too",
    ]
    assert sorted(await found(store, "POSTGRES Fast")) == [
        "Postgres is fast",
        "postgres indexes are fast too",
    ]
    assert await found(store, "postgres indexes") == ["postgres indexes are fast too"]
    assert await found(store, "postgres mysql") == []


async def test_a_quoted_phrase_matches_its_words_in_that_order_only(store: Store) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "the quick brown fox", "brown quick fox", "quick, brown!")
    assert sorted(await found(store, '"quick brown"')) == ["quick, brown!", "the quick brown fox"]
    assert sorted(await found(store, "quick brown")) == [
        "brown quick fox",
        "quick, brown!",
        "the quick brown fox",
    ]
    assert await found(store, '"brown fox"') == ["the quick brown fox"]


async def test_or_matches_either_word_and_a_minus_leaves_a_word_out(store: Store) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "my cats sleep", "my dogs bark", "my fish swim")
    assert sorted(await found(store, "cats OR dogs")) == ["my cats sleep", "my dogs bark"]
    assert sorted(await found(store, "my -cats")) == ["my dogs bark", "my fish swim"]
    assert await found(store, "my -cats -dogs") == ["my fish swim"]
    assert await found(store, '"my cats" OR fish -swim') == ["my cats sleep"]


async def test_a_query_with_nothing_to_look_for_finds_nothing_without_an_error(
    store: Store,
) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "the cat", "a dog", "?!")
    for query in ("?!", "... --- !!!", '""', "-cat", "-cat -dog", "cat OR -dog", "😀"):
        page = await store.search_messages(user_id="ann", query=query)
        assert page == SearchPage(items=(), next_cursor=None, capped=False), query
    # The 'simple' configuration has no stop words: "the" is a word like any other.
    assert await found(store, "the") == ["the cat"]


async def test_unicode_words_match_whatever_their_case(store: Store) -> None:
    await user(store, "ann")
    await conversation(
        store,
        "ann",
        "Привет, мир",
        "Ein Café an der Straße",
        "数据库 很好",
        "naïve ÉCOLE",
    )
    assert await found(store, "привет") == ["Привет, мир"]
    assert await found(store, "МИР") == ["Привет, мир"]
    assert await found(store, "café straße") == ["Ein Café an der Straße"]
    assert await found(store, "CAFÉ") == ["Ein Café an der Straße"]
    assert await found(store, "école naïve") == ["naïve ÉCOLE"]
    # Text without spaces between words (Chinese, Japanese) is one word per run.
    assert await found(store, "数据库") == ["数据库 很好"]
    assert await found(store, "cafe") == []  # accents count


async def test_words_between_angle_brackets_are_found(store: Store) -> None:
    # The default parser would read <String> and <b and c> as HTML tags and drop them.
    await user(store, "ann")
    await conversation(store, "ann", "return a Vec<String> here", "if a<b and c>d then")
    assert await found(store, "string") == ["return a Vec String> here"]
    page = await store.search_messages(user_id="ann", query='"b and c"')
    assert [hit.seq for hit in page.items] == [2]


# --- whose -------------------------------------------------------------------------------


async def test_another_users_messages_never_appear(store: Store) -> None:
    await user(store, "ann")
    await user(store, "bob")
    await user(store, "ann2")
    await conversation(store, "ann", "shared secret word")
    for owner in ("bob", "ann2"):
        await conversation(store, owner, *["shared secret word"] * 30)
    page = await store.search_messages(user_id="ann", query="secret")
    assert [hit.snippet for hit in page.items] == ["shared secret word"]
    # A cursor is only a position: bob's walk's cursor shows ann nothing of bob's.
    bob_page = await store.search_messages(user_id="bob", query="secret", limit=5)
    assert bob_page.next_cursor is not None
    ann_page = await store.search_messages(
        user_id="ann", query="secret", cursor=bob_page.next_cursor
    )
    assert {hit.conversation_id for hit in ann_page.items} <= {page.items[0].conversation_id}


async def test_a_user_id_that_needs_quoting_as_a_lexeme_is_searched_like_any(
    store: Store,
) -> None:
    # The owner's lexeme holds the id: a quote or a backslash must not break the query.
    for owner in ("o'brien", "back\\slash", "quote''d", "ünï"):
        await user(store, owner)
        await conversation(store, owner, f"note of {owner}")
    for owner in ("o'brien", "back\\slash", "quote''d", "ünï"):
        assert await found(store, "note", user_id=owner) == [f"note of {owner}"]


async def test_a_missing_user_is_not_found_and_a_user_without_matches_gets_an_empty_page(
    store: Store,
) -> None:
    with pytest.raises(NotFound):
        await store.search_messages(user_id="nobody", query="anything")
    await user(store, "ann")
    assert await store.search_messages(user_id="ann", query="anything") == SearchPage(
        items=(), next_cursor=None, capped=False
    )


# --- ranking and paging ------------------------------------------------------------------


async def test_better_matches_rank_first(store: Store) -> None:
    await user(store, "ann")
    filler = " ".join(f"w{i}" for i in range(60))
    await conversation(
        store,
        "ann",
        f"index {filler} database",  # both words, far apart
        "database index: a database index makes a database index scan fast",  # often, close
        "the database index",  # both, adjacent
        f"database {filler}",  # one word only (OR)
    )
    page = await store.search_messages(user_id="ann", query="database OR index")
    assert [hit.seq for hit in page.items] == [2, 3, 1, 4]
    ranks = [hit.rank for hit in page.items]
    assert ranks == sorted(ranks, reverse=True)
    assert ranks[-1] > 0
    # A page at a time, the same order.
    assert await walk(store, "ann", "database OR index", limit=1) == list(page.items)


async def test_every_hit_comes_with_its_conversation_number_role_and_time(
    store: Store,
) -> None:
    await user(store, "ann")
    first = await conversation(store, "ann", "nothing here", "the answer is 42", title="Maths")
    untitled = (await store.create_conversation(user_id="ann")).id
    # An assistant's message does not title a conversation.
    await store.append_message(
        user_id="ann", conversation_id=untitled, role="assistant", content="no answer"
    )
    page = await store.search_messages(user_id="ann", query="answer")
    stored = {
        (c, m.seq): m
        for c in (first, untitled)
        for m in await store.get_messages(user_id="ann", conversation_id=c)
    }
    assert len(page.items) == 2
    for hit in page.items:
        message = stored[(hit.conversation_id, hit.seq)]
        assert (hit.role, hit.created_at) == (message.role, message.created_at)
        assert hit.snippet == message.content
        assert_valid(hit)
    assert {(h.conversation_id, h.seq, h.conversation_title) for h in page.items} == {
        (first, 2, "Maths"),
        (untitled, 1, None),
    }
    assert_valid(page)


async def test_paging_walks_every_hit_once_in_order_while_new_messages_arrive(
    store: Store,
) -> None:
    await user(store, "ann")
    # Equal texts rank equally: the order falls back on (conversation_id, seq), which
    # the cursor must carry too.
    texts = [
        "alpha",
        "alpha beta",
        "alpha alpha",
        "gamma alpha delta alpha",
        "alpha " + "x " * 40,
    ]
    conversations = []
    for n in range(3):
        conversations.append(
            await conversation(store, "ann", *(texts * 16)[: 70 + n], "no match here")
        )
    everything = await walk(store, "ann", "alpha", limit=100)
    assert len(everything) == 70 + 71 + 72
    keys = [order_key(hit) for hit in everything]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    assert len({hit.rank for hit in everything}) == len(texts)

    async def arrive() -> None:  # new matches, some ranked above the cursor, some below
        for conversation_id in conversations:
            await store.append_messages(
                user_id="ann",
                conversation_id=conversation_id,
                messages=[("user", "alpha alpha alpha"), ("assistant", "alpha " + "y " * 90)],
            )

    walked = await walk(store, "ann", "alpha", limit=7, between=arrive)
    # Each hit once, in the same order; messages added during the walk are left out
    # (the walk keeps its first page's newest message as its horizon).
    assert [order_key(hit) for hit in walked] == keys
    after = await walk(store, "ann", "alpha", limit=100)
    assert len(after) > len(everything)


async def test_only_the_newest_matches_are_ranked_and_the_page_says_so(
    store: Store,
) -> None:
    await user(store, "ann")
    cap = _core.SEARCH_CAP
    oldest = await conversation(store, "ann", "needle first and best needle needle")
    await conversation(store, "ann", *["needle"] * cap)
    page = await store.search_messages(user_id="ann", query="needle", limit=100)
    assert page.capped
    walked = await walk(store, "ann", "needle", limit=100)
    assert len(walked) == cap
    assert oldest not in {hit.conversation_id for hit in walked}
    # Below the cap, everything is ranked: the best match comes first.
    page = await store.search_messages(user_id="ann", query='"first and best"')
    assert not page.capped
    assert [hit.conversation_id for hit in page.items] == [oldest]


async def test_only_the_newest_text_within_the_byte_budget_is_checked(store: Store) -> None:
    await user(store, "ann")
    size = 30_000
    count = _core.SEARCH_BUDGET // size + 1  # one message more than the budget holds
    oldest = await conversation(store, "ann", "needle " + "straw " * (size // 6 - 2))
    newer = await conversation(store, "ann", *["needle " + "hay " * (size // 4 - 2)] * (count - 1))
    walked = await walk(store, "ann", "needle", limit=100)
    assert len(walked) == count - 1
    assert {hit.conversation_id for hit in walked} == {newer}
    assert (await store.search_messages(user_id="ann", query="needle")).capped
    # The query's words decide what is looked at, its exclusions only what is kept: the
    # oldest is out of reach of a query that requires "needle", and the page says so.
    page = await store.search_messages(user_id="ann", query="needle -hay")
    assert page == SearchPage(items=(), next_cursor=None, capped=True)
    (hit,) = (await store.search_messages(user_id="ann", query="straw")).items
    assert hit.conversation_id == oldest


async def test_a_statement_prepared_and_planned_generically_returns_the_same(
    store: Store,
) -> None:
    # psycopg prepares a statement after 5 runs; PostgreSQL may then plan it once for
    # any query text. The answers must not change with the plan.
    await user(store, "ann")
    await conversation(store, "ann", "red apple", "green apple", "red car")
    expected = {"apple": 2, "red": 2, "red apple": 1, "-red": 0, "!!": 0, "car OR green": 2}
    for _ in range(4):
        for query, count in expected.items():
            page = await store.search_messages(user_id="ann", query=query)
            assert len(page.items) == count, query


# --- snippets ------------------------------------------------------------------------------


async def test_the_snippet_marks_the_words_found_by_offsets(store: Store) -> None:
    await user(store, "ann")
    filler = " ".join(f"filler{i}" for i in range(400))
    await conversation(
        store,
        "ann",
        "Postgres ranks; POSTGRES highlights.",
        f"{filler} the Postgres part {filler} and postgres again {filler}",
        "<b>bold</b> postgres & \x02marks\x03 are text",
    )
    page = await store.search_messages(user_id="ann", query="postgres -absent")
    hits = {hit.seq: hit for hit in page.items}
    short = hits[1]
    assert short.snippet == "Postgres ranks; POSTGRES highlights."
    assert [short.snippet[a:b] for a, b in short.highlights] == ["Postgres", "POSTGRES"]
    long = hits[2]
    assert len(long.snippet) < 600
    assert "…" in long.snippet  # two fragments
    assert [long.snippet[a:b] for a, b in long.highlights] == ["Postgres", "postgres"]
    marked = hits[3]
    assert [marked.snippet[a:b] for a, b in marked.highlights] == ["postgres"]
    # As plain text, with '<' and the two marks a space each.
    assert marked.snippet == " b>bold /b> postgres &  marks  are text"


async def test_an_excluded_word_is_not_highlighted(store: Store) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "fish, cats and dogs", "fish: cats dogs")
    (hit,) = (await store.search_messages(user_id="ann", query='fish -"cats dogs"')).items
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["fish"]


# --- bad input -----------------------------------------------------------------------------


def _search_cursor(version: int, rank: float, conversation_id: int, seq: int, micros: int) -> str:
    raw = struct.pack(">Bfqqq", version, rank, conversation_id, seq, micros)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GOOD_CURSOR = _search_cursor(1, 0.5, 1, 1, 0)
BAD_CALLS: list[dict[str, Any]] = [
    {"query": ""},
    {"query": "   "},
    {"query": "\u3000\u200b\t"},
    {"query": "x" * (_core.MAX_QUERY + 1)},
    {"query": "nul\x00"},
    {"query": "lone \ud800"},
    {"query": None},
    {"query": 5},
    {"query": "ok", "limit": 0},
    {"query": "ok", "limit": 101},
    {"query": "ok", "limit": True},
    {"query": "ok", "limit": "5"},
    {"query": "ok", "cursor": ""},
    {"query": "ok", "cursor": "nope"},
    {"query": "ok", "cursor": 5},
    {"query": "ok", "cursor": GOOD_CURSOR[:-1]},
    {"query": "ok", "cursor": GOOD_CURSOR + "A"},
    {"query": "ok", "cursor": _search_cursor(2, 0.5, 1, 1, 0)},  # unknown version
    {"query": "ok", "cursor": _search_cursor(1, float("nan"), 1, 1, 0)},
    {"query": "ok", "cursor": _search_cursor(1, float("inf"), 1, 1, 0)},
    {"query": "ok", "cursor": _search_cursor(1, -1.0, 1, 1, 0)},
    {"query": "ok", "cursor": _search_cursor(1, 0.5, 0, 1, 0)},
    {"query": "ok", "cursor": _search_cursor(1, 0.5, 1, 0, 0)},
    {"query": "ok", "cursor": _search_cursor(1, 0.5, 1, 1, 2**62)},  # past year 9999
    # list_conversations' cursor is not a search cursor.
    {"query": "ok", "cursor": "AQAAAAAAAAAAAAAAAAAAAAE"},
    {"user_id": "ann\x00", "query": "ok"},
    {"user_id": 7, "query": "ok"},
]


async def closed_like(store: Store, db_dsn: str) -> Store:
    """The same API on a closed connection of the same kind: a call that sends SQL
    raises Unavailable, so an InvalidInput from it proves no SQL was attempted. (Made
    here, not by tests/_helpers.closed: tests/test_citus.py runs this module too.)"""
    if store.kind == "sync":
        sync_conn = psycopg.connect(db_dsn)
        sync_conn.close()
        return Store(store.module, sync_conn, store.kind)
    async_conn = await psycopg.AsyncConnection.connect(db_dsn)
    await async_conn.close()
    return Store(store.module, async_conn, store.kind)


@pytest.mark.parametrize("call", BAD_CALLS, ids=lambda c: repr(c)[:60])
async def test_bad_input_is_invalid_input_before_any_sql(
    store: Store, conn: psycopg.Connection, db_dsn: str, call: dict[str, Any]
) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "ok then")
    before = snapshot(conn)
    kwargs = {"user_id": "ann", **call}
    for api in (store, await closed_like(store, db_dsn)):
        with pytest.raises(InvalidInput):
            await api.search_messages(**kwargs)
    assert snapshot(conn) == before


async def test_the_longest_query_and_the_page_bounds_are_accepted(store: Store) -> None:
    await user(store, "ann")
    await conversation(store, "ann", "word " * 10)
    assert await found(store, "word " * (_core.MAX_QUERY // 5)) == ["word " * 10]
    for limit in (1, 100):
        assert (
            len((await store.search_messages(user_id="ann", query="word", limit=limit)).items) == 1
        )


def test_a_search_cursor_round_trips_exactly() -> None:
    newest = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    for rank in (0.0, 0.1, 1e-30, 3.4e38, 0.030396355):
        rank32 = struct.unpack(">f", struct.pack(">f", rank))[0]
        text = _core.encode_search_cursor(rank32, 2**63 - 1, 7, newest)
        assert len(text) == 39
        assert _core.decode_search_cursor(text) == (rank32, 2**63 - 1, 7, newest)
