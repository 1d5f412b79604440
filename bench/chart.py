"""The PNG chart: median latency of each operation against total messages stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.contenders import MODULES
from bench.contenders.base import OPERATIONS

STYLE = {
    "floor": ("black", "-"),
    "chatstore": ("tab:blue", "-"),
    "chatstore-async": ("tab:cyan", "--"),
    "chatstore-sql": ("tab:gray", ":"),
    "sqlmodel-seed-style": ("tab:red", ":"),
    "sqlmodel-competent": ("tab:red", "-"),
    "langchain": ("tab:green", "-"),
    "agents-per-call": ("tab:purple", ":"),
    "agents-psycopg": ("tab:purple", "-"),
    "agents-asyncpg": ("tab:pink", "-"),
}


def draw(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    scales = results["scales"]
    ops = [op for op in OPERATIONS if any(op in sc["operations"] for sc in scales)]
    cols = 4
    rows = (len(ops) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        for name in MODULES:
            xs, ys = [], []
            for sc in scales:
                cell = sc["operations"].get(op, {}).get(name, {})
                if "median_ms" in cell:
                    xs.append(sc["total_messages"])
                    ys.append(cell["median_ms"])
            if xs:
                color, line = STYLE.get(name, ("grey", ":"))
                ax.plot(xs, ys, line, color=color, marker="o", label=name)
        ax.set_title(OPERATIONS[op], fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages stored", fontsize=8)
        ax.set_ylabel("median ms", fontsize=8)
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(ops) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=9)
    fig.suptitle(
        f"chatstore vs floor and peers: median latency against data size ({results['placement']})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
