"""Fixtures shared by the ensemble tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def single_blas_thread() -> Iterator[None]:
    # The fits here are tiny, and BLAS threads contending for the CI's two cores made them
    # about six times slower than one thread.
    with threadpool_limits(limits=1):
        yield
