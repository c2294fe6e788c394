"""Post-load code: everything that happens in the destination after dlt's load.

Which destination and which DuckDB file (``destination``), SQL quoting and catalog reads (``sql``),
the whole-copy swaps (``duckdb_swap``, ``dataset_swap``), run locks (``locks``), wide views and their
mapping table (``naming``, ``views``), and tables kept across replace runs (``persistent``,
``history``). Nothing in ``streak_source`` imports this package. Import the modules you need; this
file imports nothing, so the dashboard pays only for what it uses.
"""
