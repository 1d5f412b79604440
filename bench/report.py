"""Write ``docs/benchmarks.md`` and its chart from one run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import chart, targets
from bench.contenders import MODULES
from bench.contenders.base import OPERATIONS

ANALYSIS = Path(__file__).with_name("ANALYSIS.md")


def _cell(cell: dict[str, Any], floor: float | None) -> str:
    if "median_ms" in cell:
        ratio = f" ({cell['median_ms'] / floor:.2f}x)" if floor else ""
        return f"{cell['median_ms']:.3f}{ratio}"
    if "unsupported" in cell:
        return "cannot"
    if "unavailable" in cell:
        return "unavailable"
    return "error"


def _p99(cell: dict[str, Any]) -> str:
    return f"{cell['p99_ms']:.3f}" if "p99_ms" in cell else "-"


def _loadavg(scale: dict[str, Any]) -> str:
    before, after = scale.get("load_average_before"), scale.get("load_average_after")
    if not before or not after:
        return "-"
    return f"{before[0]:.1f} / {after[0]:.1f}"


def _paired(cell: dict[str, Any]) -> str:
    return f"{cell['paired_ratio']:.2f}x" if "paired_ratio" in cell else "-"


def _scale_tables(scale: dict[str, Any]) -> list[str]:
    names = [n for n in MODULES if n in scale["contenders"]]
    d = scale["data"]
    lines = [
        f"### {scale['total_messages']:,} messages",
        "",
        f"{d['users']:,} users, {d['conversations']:,} conversations, "
        f"{d['messages']:,} messages (mean {d['messages_avg_chars']} characters), "
        f"database {d['database']} including the peers' copies.",
        "",
        "Median ms per operation, ratio to the floor's median in brackets:",
        "",
        "| operation | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for op, cells in scale["operations"].items():
        floor = cells.get("floor", {}).get("median_ms")
        lines.append(
            f"| {OPERATIONS[op]} | "
            + " | ".join(_cell(cells.get(n, {}), floor) for n in names)
            + " |"
        )
    lines += [
        "",
        "p99 ms (and iterations measured, floor / chatstore):",
        "",
        "| operation | " + " | ".join(names) + " | n |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for op, cells in scale["operations"].items():
        n = " / ".join(str(cells.get(k, {}).get("n", "-")) for k in ("floor", "chatstore"))
        lines.append(
            f"| {OPERATIONS[op]} | "
            + " | ".join(_p99(cells.get(k, {})) for k in names)
            + f" | {n} |"
        )
    if any("paired_ratio" in c for cells in scale["operations"].values() for c in cells.values()):
        lines += [
            "",
            "Paired ratio to the floor (median over rounds of this contender's block median "
            "over the floor's block median in the same round; resists bursts of load from "
            "other processes on the machine):",
            "",
            "| operation | " + " | ".join(names[1:]) + " |",
            "|---|" + "---:|" * (len(names) - 1),
        ]
        for op, cells in scale["operations"].items():
            lines.append(
                f"| {OPERATIONS[op]} | "
                + " | ".join(_paired(cells.get(k, {})) for k in names[1:])
                + " |"
            )
    cannot: dict[str, list[str]] = {}
    for op, cells in scale["operations"].items():
        for name, cell in cells.items():
            if "unsupported" in cell:
                cannot.setdefault(f"{name}: {cell['unsupported']}", []).append(op)
            elif "unavailable" in cell or "error" in cell:
                why = cell.get("unavailable") or cell.get("error")
                cannot.setdefault(f"{name}: {why}", []).append(op)
    if cannot:
        lines += ["", "Where a cell has no figure:", ""]
        lines += [f"- {why} ({', '.join(ops)})" for why, ops in cannot.items()]
    return [*lines, ""]


def _concurrency(conc: dict[str, Any]) -> list[str]:
    clients = conc.get("clients", {})
    names = sorted({k for row in clients.values() for k in row})
    lines = [
        "## Concurrency",
        "",
        conc.get("method", ""),
        "",
        "| clients | " + " | ".join(f"{n} ops/s" for n in names) + " | chatstore / floor |",
        "|---:|" + "---:|" * (len(names) + 1),
    ]
    for count, row in clients.items():
        ratio = (
            f"{row['chatstore'] / row['floor']:.2f}x"
            if row.get("floor") and row.get("chatstore")
            else "n/a"
        )
        lines.append(
            f"| {count} | "
            + " | ".join(f"{row[n]:,.0f}" if n in row else "-" for n in names)
            + f" | {ratio} |"
        )
    return [*lines, ""]


def _bulk(bulk: dict[str, Any]) -> list[str]:
    lines = [
        "## Bulk import memory",
        "",
        bulk.get("method", ""),
        "",
        "| importer | seconds | messages/s | peak RSS growth MiB | baseline MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in bulk.get("importers", {}).items():
        if "error" in row:
            lines.append(f"| {name} | {row['error']} | | | |")
            continue
        lines.append(
            f"| {name} | {row['seconds']:.1f} | {row['rate']:,.0f} | "
            f"{row['rss_growth_mib']:.1f} | {row['baseline_rss_mib']:.1f} |"
        )
    return [*lines, ""]


def write(results: dict[str, Any], markdown: Path, chart_path: Path) -> None:
    m, s = results["machine"], results["server"]
    pk = m["packages"]
    lines = [
        "# Benchmarks",
        "",
        "The cost of the tenant keys, and Citus against one node: "
        "[benchmarks-scale-out.md](benchmarks-scale-out.md) (`python -m bench.keys`). Per-user",
        "search against an ILIKE scan: [benchmarks-search.md](benchmarks-search.md)",
        "(`python -m bench.search`).",
        "",
        "Generated by `python -m bench` (`make bench`); do not edit by hand: the closing",
        "note comes from `bench/ANALYSIS.md`. Every figure below is from one run on this",
        "machine; contenders ran interleaved in small blocks in the same run, on the same",
        "server and the same data. Absolute times drift by about 20% between runs; the",
        "ratios of medians are the figures to quote.",
        "",
        f"- Run: {results['started']}, {results['mode']} mode, {results['seconds']} s in all.",
        f"- Machine: {m['cpu_model']}, {m['vcpus']} vCPUs, {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}.",
        f"- Server: {s['version'].split(' on ')[0]}"
        f" ({'embedded pgserver' if s.get('embedded') else 'named by CHATSTORE_DSN'}), "
        f"synchronous_commit={s['synchronous_commit']}, fsync={s['fsync']}, "
        f"shared_buffers={s['shared_buffers']}, jit={s['jit']}. Appends are durable commits. "
        "Autovacuum is off on the measured tables; the loader runs VACUUM (ANALYZE) after "
        "each load and waits for a quiet server before measuring.",
        f"- Placement: {results['placement']}"
        + (
            " (each measuring process and its server backend pinned to vCPU 0, the "
            "orchestrator on vCPU 1)."
            if results["placement"] == "same-cpu"
            else "."
        ),
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in pk.items()) + ".",
        "",
        f"![median latency against data size]({chart_path.name})",
        "",
        "## Contenders",
        "",
    ]
    first = results["scales"][0] if results["scales"] else {"contenders": {}}
    for name in MODULES:
        info = first["contenders"].get(name)
        if info is None:
            continue
        if "unavailable" in info:
            lines.append(f"- **{name}**: unavailable in this run ({info['unavailable']}).")
            continue
        notes = "; ".join(info.get("notes", []))
        lines.append(f"- **{name}**: {info['description']}" + (f". {notes}." if notes else "."))
    lines += [
        "",
        "## Targets",
        "",
        "Checked at each scale (the concurrency target once: it ran on the last scale's "
        "data). Ratios of medians; the paired ratios are in brackets where they exist.",
    ]
    for index in range(len(results["scales"]) - 1, -1, -1):
        scale = results["scales"][index]
        lines += [
            "",
            f"### Targets at {scale['total_messages']:,} messages",
            "",
            "| target | measured | met |",
            "|---|---|---|",
        ]
        for v in targets.check(results, index):
            if index != len(results["scales"]) - 1 and "concurrent" in v.target:
                continue
            met = "n/a" if v.met is None else ("yes" if v.met else "**no**")
            lines.append(f"| {v.target} | {v.measured} | {met} |")
    lines += [
        "",
        "## Data",
        "",
        "| scale | users | conversations | messages | database | "
        "load s (chatstore tables) | messages/s | peers' copies s | "
        "machine load average before / after measuring |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for sc in results["scales"]:
        d = sc["data"]
        rate = sc["load_added"] / sc["load_seconds"] if sc["load_seconds"] else 0
        lines.append(
            f"| {sc['total_messages']:,} | {d['users']:,} | {d['conversations']:,} | "
            f"{d['messages']:,} | {d['database']} | {sc['load_seconds']} | "
            f"{rate:,.0f} | {sc['peer_copy_seconds']} | {_loadavg(sc)} |"
        )
    lines += ["", "## Latency by scale", ""]
    for sc in results["scales"]:
        lines += _scale_tables(sc)
    if "concurrency" in results:
        lines += _concurrency(results["concurrency"])
    if "bulk_import" in results:
        lines += _bulk(results["bulk_import"])
    if "agents_sessions" in results:
        from bench import agents_sessions

        lines += agents_sessions.markdown(results["agents_sessions"])
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(lines))
    chart.draw(results, chart_path)
