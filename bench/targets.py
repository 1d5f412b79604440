"""The issue's targets, checked against one run's figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHATSTORE = ("chatstore", "chatstore-async")


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: could not be measured in this run


def _median(scale: dict[str, Any], op: str, who: str) -> float | None:
    cell = scale["operations"].get(op, {}).get(who, {})
    value = cell.get("median_ms")
    return float(value) if value is not None else None


def _paired_note(scale: dict[str, Any], op: str, who: str) -> str:
    value = scale["operations"].get(op, {}).get(who, {}).get("paired_ratio")
    return "" if value is None else f" (paired {value:.2f}x)"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def check(results: dict[str, Any], at: int = -1) -> list[Verdict]:
    """The targets at scale index ``at`` (default: the largest)."""
    scales = results["scales"]
    if not scales:
        return []
    big, small = scales[at], scales[0]
    out: list[Verdict] = []
    for who in CHATSTORE:
        ratios = {
            op: _ratio(_median(big, op, who), _median(big, op, "floor")) for op in big["operations"]
        }
        worst = max(((r, op) for op, r in ratios.items() if r is not None), default=None)
        out.append(
            Verdict(
                f"{who} within 1.3x of the floor on every operation",
                "not measured"
                if worst is None
                else f"worst {worst[0]:.2f}x ({worst[1]}); "
                + ", ".join(
                    f"{op} {_fmt(r)}{_paired_note(big, op, who)}" for op, r in ratios.items()
                ),
                None if worst is None else worst[0] <= 1.3,
            )
        )
    # Issue 11 item 6: records nearer the floor on the reads, pinned.
    for who in CHATSTORE:
        for ops, limit, what in (
            (("last50_of_50", "last50_of_10000"), 1.3, "50-message reads"),
            (("whole_1000",), 1.8, "the 1,000-message read"),
        ):
            read = {op: _ratio(_median(big, op, who), _median(big, op, "floor")) for op in ops}
            known = [r for r in read.values() if r is not None]
            out.append(
                Verdict(
                    f"{who} within {limit}x of the floor on {what}",
                    ", ".join(
                        f"{op} {_fmt(r)}{_paired_note(big, op, who)}" for op, r in read.items()
                    ),
                    max(known) <= limit if known else None,
                )
            )
    cs = "chatstore"
    for op, peer, factor in (
        *(
            (op, peer, factor)
            for peer in ("sqlmodel-competent", "sqlmodel-seed-style")
            for op, factor in (("last50_of_50", 3), ("append_one", 5), ("delete_1000", 10))
        ),
        ("last50_of_50", "langchain", 2),
    ):
        r = _ratio(_median(big, op, peer), _median(big, op, cs))
        out.append(
            Verdict(
                f"{cs} at least {factor}x faster than {peer} on {op}",
                _fmt(r),
                None if r is None else r >= factor,
            )
        )
    r = _ratio(_median(big, "last50_of_10000", cs), _median(big, "last50_of_50", cs))
    out.append(
        Verdict(
            "last 50 of a 10,000-message conversation as fast as of a 50-message one",
            f"{_fmt(r)} (10,000 vs 50)",
            None if r is None else r <= 1.2,
        )
    )
    r = _ratio(_median(big, "last50_of_50", cs), _median(small, "last50_of_50", cs))
    moved = _ratio(_median(big, "last50_of_50", "floor"), _median(small, "last50_of_50", "floor"))
    out.append(
        Verdict(
            f"last-50 read at {big['total_messages']:,} messages within 1.5x of "
            f"{small['total_messages']:,}",
            f"{_fmt(r)} (the floor's own read moved {_fmt(moved)})",
            None if r is None or big is small else r <= 1.5,
        )
    )
    r = _ratio(_median(big, "list_page_50", cs), _median(big, "list_recent_20", cs))
    out.append(
        Verdict("listing page 50 within 1.5x of page 1", _fmt(r), None if r is None else r <= 1.5)
    )
    conc = results.get("concurrency", {}).get("clients", {})
    top = conc.get("16", {})
    r = _ratio(top.get("chatstore"), top.get("floor"))
    out.append(
        Verdict(
            "16 concurrent clients: throughput at least 0.8x of the floor's",
            _fmt(r),
            None if r is None else r >= 0.8,
        )
    )
    return out
