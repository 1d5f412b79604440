"""Benchmarks for chatstore against the floor and its peers (issue 5).

Run ``python -m bench`` (quick: 100k and 1M messages) or ``python -m bench --full``
(adds 10M). Results go to ``docs/benchmarks.md`` and ``docs/benchmarks.png``.
"""
