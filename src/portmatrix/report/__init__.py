"""Reports: every view of a result is a module here, all fed the same data."""
