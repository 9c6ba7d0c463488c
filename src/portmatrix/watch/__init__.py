"""Live monitoring: the check pipeline run continuously over a capture stream, its
lines, metrics and final report."""
