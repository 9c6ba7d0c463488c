"""Test factories shipped with the package (as mitmproxy ships `mitmproxy.test`).

Nothing here is imported by the rest of portmatrix.
"""
