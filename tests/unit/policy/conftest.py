"""The "roles" site's matrix, loaded: what inventories and role maps are checked against."""

from __future__ import annotations

import pytest

from portmatrix.policy.matrix import Matrix, load_matrix


@pytest.fixture
def roles_matrix(matrix) -> Matrix:
    """The matrix of the "roles" site (tests/support/site.py), loaded."""
    return load_matrix([matrix("roles")])
