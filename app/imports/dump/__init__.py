"""Whole-registry dumps (SPEC §4): `undersigned export DIR` writes one UTF-8 CSV per table,
`undersigned import DIR` reads them back; Popolo JSON (persons, organizations, memberships)
both ways.

- `files`: the files and their columns (`COLUMNS`, the one definition of the format), their
  rows read lazily from a directory, and a row's fields checked;
- `export`: every table streamed to its file in id order (`yield_per`: memory stays flat);
- `load`: the load, row by row, into an empty registry or one with data;
- `postgres`: its bulk path on PostgreSQL (COPY into staging tables, checks in SQL);
- `indexes`: indexes and keys dropped during a bulk insert into an empty table;
- `popolo`: Popolo JSON written from the registry, and read as a dump.

Beyond the columns of the SPEC table, `letters.csv` carries `body` (the letter's text),
`signatures.csv` `source` and `events.csv` `campaign` (events of a campaign), so that a dump
loses nothing; a dump without them loads too.
"""
