"""Post-load code: everything that happens in the destination after dlt's load.

Which destination and which DuckDB file (``destination``), SQL quoting and catalog reads (``sql``),
one home per destination kind (``targets/``: a DuckDB file swapped whole, a Postgres schema
renamed into place, in place), run locks (``locks``), wide views and their
mapping table (``naming``, ``views``), and tables kept across replace runs (``persistent``,
``history``). Nothing in ``streak_source`` imports this package. Import the modules you need; this
file imports nothing, so the dashboard pays only for what it uses.
"""
