"""The serving tests' constants; the package fixtures live in :mod:`tests.serving.fixtures`
and are registered once for the whole suite by ``tests/conftest.py``."""

from tests.serving.fixtures import (  # noqa: F401 - re-exported for the tests
    FEATURES,
    KINDS,
    SMALL_MMOE,
    TABULAR_FEATURES,
    TASKS,
)
