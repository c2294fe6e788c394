"""One home per destination kind: ``duckdb_file`` (a local DuckDB file swapped whole),
``schema_swap`` (a Postgres schema renamed into place), ``in_place`` (anything else, table by
table). ``configured.configured_target`` picks the kind once per run; ``base`` says what a kind
offers the main job and the events load."""
