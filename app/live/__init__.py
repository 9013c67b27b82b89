"""Live counts for many readers: a write tells every process (`notify`), each process watches
the letters its streams follow with one watcher (`watch`) and sends one rendering of each new
state to all of their streams (`hub`)."""
