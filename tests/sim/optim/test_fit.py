"""Parameter fitting: recovers known parameters of an analytic model; honest uncertainty."""

import numpy as np
import pytest
import torch

from sim.optim.fit import fit_parameters

T = torch.linspace(0, 3, 200, dtype=torch.float64)


def oscillator(theta):  # damped oscillation x(t) = exp(-c t) cos(w t), theta = (c, w)
    return torch.exp(-theta[0] * T) * torch.cos(theta[1] * T)


def test_recovers_parameters_within_a_few_percent_with_calibrated_uncertainty():
    truth = np.array([0.7, 4.0])
    noise = 0.01
    record = oscillator(torch.as_tensor(truth)) + noise * torch.randn(len(T), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fit = fit_parameters(lambda th: (oscillator(th) - record) / noise, ["damping", "frequency"], [0.5, 4.4], [0.01, 0.5], [10.0, 20.0])
    assert fit.converged, fit.message
    assert np.all(np.abs(fit.values / truth - 1) < 0.05)
    assert np.all(np.abs(fit.values - truth) < 4 * fit.std)  # the truth lies within the stated uncertainty
    assert np.all(fit.std / fit.values < 0.05)
    assert fit.rms == pytest.approx(1.0, abs=0.15) and fit.initial_rms > 5  # residuals down to the noise level
    assert [row["name"] for row in fit.table()] == ["damping", "frequency"]


def test_noise_free_data_is_matched_exactly():
    truth = torch.tensor([0.3, 2.5], dtype=torch.float64)
    record = oscillator(truth)
    fit = fit_parameters(lambda th: oscillator(th) - record, ["c", "w"], [0.36, 2.3], [0.01, 0.5], [10.0, 20.0])
    assert np.allclose(fit.values, truth.numpy(), rtol=1e-5)


def test_bad_bounds_are_named():
    with pytest.raises(ValueError, match="friction"):
        fit_parameters(lambda th: th, ["friction"], [0.5], [0.6], [1.0])
