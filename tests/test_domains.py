"""Input domains: sampling, projection, serialization and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from tafa_tf.domains import Box, Domain, Gaussian, as_domain, default_domain
from tafa_tf.errors import DomainError


def test_box_samples_and_projects_inside():
    box = Box(0.0, 1.0)
    x = box.sample(np.random.default_rng(0), (50, 8, 8, 1))
    assert x.shape == (50, 8, 8, 1) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(box.project(np.array([[-1.0, 0.5, 2.0]])), [[0.0, 0.5, 1.0]])


def test_box_with_per_feature_bounds_round_trips():
    box = Box([0, -1, -2], [1, 1, 2])
    back = Domain.from_dict(box.to_dict())
    assert isinstance(back, Box)
    np.testing.assert_array_equal(back.low, box.low)
    with pytest.raises(DomainError, match="do not fit inputs"):
        box.sample(np.random.default_rng(0), (2, 5))


def test_gaussian_keeps_latents_in_the_typical_shell():
    g = Gaussian(1.0)
    far = np.full((3, 16), 10.0, "float32")
    near_zero = np.full((3, 16), 1e-3, "float32")
    for x in (far, near_zero):
        norms = np.linalg.norm(g.project(x), axis=1)
        assert np.all(norms <= 4 + 3 * 0.71 + 1e-4) and np.all(norms >= 4 - 3 * 0.71 - 1e-4)
    assert isinstance(Domain.from_dict(g.to_dict()), Gaussian)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Box(1.0, 0.0), "low < high"),
        (lambda: Box(0.0, float("nan")), "finite"),
        (lambda: Gaussian(-1.0), "positive"),
        (lambda: as_domain("pixels"), "Received: domain='pixels'"),
        (lambda: Domain.from_dict({"kind": "sphere"}), "Unknown domain"),
    ],
)
def test_bad_domains_say_what_they_received(make, message):
    with pytest.raises(DomainError, match=message):
        make()


def test_documented_defaults():
    assert isinstance(default_domain("generation", (8,)), Gaussian)
    assert isinstance(default_domain("classification", (8, 8, 1)), Box)
    assert isinstance(default_domain("regression", (10,)), Gaussian)
    assert isinstance(as_domain((0, 1)), Box)
