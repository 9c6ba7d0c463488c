"""Policy: the matrix and inventory (their formats, loading, lint), the role map,
the compiled lookup and classification, and drafting a matrix from traffic."""
