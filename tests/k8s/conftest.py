"""tests/k8s/ runs on the real control plane: the session-scoped `control_plane` fixture
(tests/conftest.py, built by tests/fixtures/control_plane.py and shared with the "real"
backend of tests/adapters/). Every test here is `slow` (tests/conftest.py): `make test`
runs them, `make check` does not.
"""

from __future__ import annotations

from tests.fixtures.control_plane import BUILD, ROOT, crds

__all__ = ["BUILD", "ROOT", "crds"]
