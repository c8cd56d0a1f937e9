"""Device I/O: each driver turns one kind of connection into normalised readings."""
