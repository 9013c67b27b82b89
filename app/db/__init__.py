"""The database: the engine of each backend (`engine`), SQLite's connection set-up and writer
gate (`sqlite`), the `Database` with its sessions and the request's transaction (`database`),
and the rows the event loop reads without a thread (`rows`)."""
