"""asv benchmarks of fastconv (run with ``asv run`` from the repository root; see asv.conf.json)."""
