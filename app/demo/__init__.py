"""The demo data (the two letters of September 2020 on the Uighurs, the UK Parliament on
2020-09-09) and its loader. The files and their sources are in `data/` (see `data/SOURCES.md`)."""
