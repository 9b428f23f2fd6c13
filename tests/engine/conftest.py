"""Fixtures of the sampler tests."""

import pytest

from tests.conftest import tiny_prior


@pytest.fixture(scope="module")
def prior():
    """A tiny random DiT prior, frozen, in eval mode."""
    return tiny_prior(0).eval().requires_grad_(False)
