"""Conformance: the cpu and reference backends equal PyTorch 2.13's nn.RNN/LSTM/GRU.

Final hidden states must agree within 1e-5 absolute, for settings at PyTorch's init scale
and at the weight-guessing scale (uniform in [-100, 100]), T from 1 to 1000, I in {1, 3},
H in {1, 2, 32}.

Chaotic (ill-conditioned) trajectories are excluded, and counted: two float32
implementations that round differently may rightly diverge on them. A (setting,
sequence) pair is called ill-conditioned when the float64 reference itself moves by more
than ``SENSITIVITY`` under a perturbation of the weights and inputs of the size of one
float32 rounding error accumulated in one step (relative 2^-18: a sum of 33 products of
size 100 in float32 is off by about that much), or when its state leaves float32's range (a ReLU RNN
that overflows). That detector is independent of the implementations under test. At
PyTorch's init scale no pair may be excluded. At the large scale, long trajectories of
32 units are mostly ill-conditioned (pre-activations of size ~300 cross zero somewhere
in almost every run), so there the count is reported rather than bounded (see the
terminal summary, "conformance:"); for one step at least half of the pairs must be
compared, and ``test_one_step_at_large_scale_along_a_trajectory`` checks single steps
from states deep inside long large-scale trajectories, where the equations, not chaos,
decide the result.

The states of tanh, LSTM and GRU cells lie in [-1, 1], where the bound is the plain 1e-5
absolute. A ReLU RNN's states are unbounded, and float32 cannot hold a state of 1000 to
1e-5 absolute (its spacing there is 6e-5); so the bound, and the sensitivity threshold,
are scaled by max(1, |reference|): absolute wherever |h| <= 1, relative beyond.
"""

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstmsearch import Cell, simulate  # noqa: E402
from lstmsearch.kernels import reference  # noqa: E402

TOL = 1e-5
SENSITIVITY = 1e-4  # movement under a 2^-18 perturbation; float32 rounding (2^-24) moves ~64x less
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def torch_final(cell, params, x):
    """Final hidden state (P, B, H) from one torch module call per setting."""
    out = []
    xt = torch.from_numpy(x)
    with torch.no_grad():
        for p in params:
            seq, _ = cell.torch_model(p).rnn(xt)
            out.append(seq[-1].numpy())
    return np.stack(out)


def ill_conditioned(cell, params, x, ref, rng):
    """(P, B) mask: the float64 reference moves under float32-sized perturbations."""
    eps = 2.0 ** -18
    moved = np.zeros(ref.shape[:2], bool)
    for _ in range(3):
        dp = params.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, params.shape))
        dx = x.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, x.shape))
        hs, _ = reference.run(cell, dp, dx, [x.shape[0] - 1])
        with np.errstate(invalid="ignore"):
            diff = np.abs(hs[:, 0] - ref)
        moved |= ~((diff / scale_of(ref)).max(axis=-1) <= SENSITIVITY)  # NaN/inf count as moved
    overflow = ~(np.abs(ref) < 1e30).all(axis=-1)
    return moved | overflow


def scale_of(ref):
    """max(1, |reference|): the bound is absolute where |h| <= 1 (see module doc)."""
    return np.maximum(1.0, np.abs(np.nan_to_num(ref, nan=0.0, posinf=0.0, neginf=0.0)))


def final_h(cell, out):
    return out[0] if cell.kind == "lstm" else out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("hidden", [1, 2, 32])
@pytest.mark.parametrize("scale", ["torch", 100.0])
@pytest.mark.parametrize("T", [1, 37, 1000])
def test_cpu_and_reference_equal_torch(kind, inputs, hidden, scale, T, conformance_counts):
    rng = np.random.default_rng(zlib.crc32(repr((kind, inputs, hidden, scale, T)).encode()))
    cell = Cell(kind, hidden, inputs=inputs)
    P, B = 4, 6
    if scale == "torch":
        params = cell.init(P, seed=int(rng.integers(1 << 30)))
    else:
        params = cell.init(P, seed=int(rng.integers(1 << 30)), method="uniform", scale=scale)
    x = rng.uniform(-1, 1, size=(T, B, inputs)).astype(np.float32)

    ref = final_h(cell, simulate(cell, params, x, backend="reference"))
    cpu = final_h(cell, simulate(cell, params, x, backend="cpu"))
    tor = torch_final(cell, params, x)

    excluded = ill_conditioned(cell, params, x, ref, rng)
    keep = ~excluded
    conformance_counts[(kind, str(scale))] += np.array([keep.sum(), excluded.sum()])
    if scale == "torch":
        assert not excluded.any(), "no trajectory at PyTorch's init scale should be ill-conditioned"
    elif T == 1:
        assert keep.mean() >= 0.5, f"only {keep.sum()} of {keep.size} pairs compared"
    scale_ = scale_of(ref)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in excluded, overflowed pairs
        for name, got in [("cpu", cpu), ("torch", tor)]:
            err = (np.abs(got - ref) / scale_).max(axis=-1)[keep]
            assert err.max(initial=0.0) <= TOL, f"{name} differs from reference by {err.max():.3g}"
        assert (np.abs(cpu - tor) / scale_).max(axis=-1)[keep].max(initial=0.0) <= TOL


@pytest.mark.parametrize("kind", KINDS)
def test_whole_trajectory_and_cell_state_match_torch(kind):
    """return_sequence gives every step; the LSTM's c also matches torch's c_n."""
    cell = Cell(kind, 3, inputs=2)
    params = cell.init(2, seed=5)
    x = np.random.default_rng(1).normal(size=(12, 4, 2)).astype(np.float32)
    seq = simulate(cell, params, x, return_sequence=True)
    with torch.no_grad():
        for p in range(2):
            t_seq, t_state = cell.torch_model(params[p]).rnn(torch.from_numpy(x))
            ours = seq[0][p] if kind == "lstm" else seq[p]
            assert ours.shape == (12, 4, 3)
            np.testing.assert_allclose(ours, t_seq.numpy(), atol=TOL, rtol=0)
            if kind == "lstm":
                np.testing.assert_allclose(seq[1][p][-1], t_state[1][0].numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_initial_state_matches_torch(kind, backend):
    cell = Cell(kind, 4, inputs=1)
    params = cell.init(3, seed=2)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (9, 5, 1)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (3, 5, 4)).astype(np.float32)
    c0 = rng.uniform(-1, 1, (3, 5, 4)).astype(np.float32)
    out = simulate(cell, params, x, backend=backend, h0=(h0, c0) if kind == "lstm" else h0)
    with torch.no_grad():
        for p in range(3):
            state = (torch.from_numpy(h0[p][None]), torch.from_numpy(c0[p][None])) if kind == "lstm" \
                else torch.from_numpy(h0[p][None])
            seq, _ = cell.torch_model(params[p]).rnn(torch.from_numpy(x), state)
            np.testing.assert_allclose(final_h(cell, out)[p], seq[-1].numpy(), atol=TOL, rtol=0)


def test_readout_model_matches_flat_readout():
    """The torch model's readout applied to h_T equals W_out h_T + b_out from the flat vector."""
    cell = Cell("gru", 5, inputs=1, outputs=2)
    params = cell.init(1, seed=9)
    x = np.random.default_rng(0).uniform(-1, 1, (7, 3, 1)).astype(np.float32)
    h = simulate(cell, params, x, backend="reference")[0]
    blocks = cell.unflatten(params[0])
    expected = h @ blocks["weight_out"].T.astype(np.float64) + blocks["bias_out"]
    with torch.no_grad():
        got = cell.torch_model(params[0])(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=TOL)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_one_step_at_large_scale_along_a_trajectory(kind):
    """Weights uniform in [-100, 100], H = 32: from states met along a 1000-step reference
    trajectory, one step of cpu, reference and torch agree within 1e-5."""
    cell = Cell(kind, 32, inputs=1)
    params = cell.init(2, seed=11, method="uniform", scale=100.0)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (1000, 3, 1)).astype(np.float32)
    picks = np.array([10, 250, 999])
    hs, cs = reference.run(cell, params, x, picks)
    compared = 0
    for s, t in enumerate(picks[:-1]):
        h0 = hs[:, s].astype(np.float32)
        c0 = None if cs is None else cs[:, s].astype(np.float32)
        x1 = x[t + 1:t + 2]
        state = (h0, c0) if kind == "lstm" else h0
        ref = final_h(cell, simulate(cell, params, x1, backend="reference", h0=state))
        cpu = final_h(cell, simulate(cell, params, x1, backend="cpu", h0=state))
        with torch.no_grad():
            tor = []
            for p in range(2):
                st = (torch.from_numpy(h0[p][None]), torch.from_numpy(c0[p][None])) if kind == "lstm" \
                    else torch.from_numpy(h0[p][None])
                tor.append(cell.torch_model(params[p]).rnn(torch.from_numpy(x1), st)[0][-1].numpy())
        tor = np.stack(tor)
        ok = ~ill_conditioned_step(cell, params, x1, h0, c0, ref, rng)
        compared += ok.sum()
        for got in (cpu, tor):
            assert np.abs(got - ref).max(axis=-1)[ok].max(initial=0.0) <= TOL
    assert compared >= 6, f"only {compared} of 12 pairs were well-conditioned"


def ill_conditioned_step(cell, params, x, h0, c0, ref, rng):
    """Like :func:`ill_conditioned`, for one step from given states."""
    eps = 2.0 ** -18
    moved = np.zeros(ref.shape[:2], bool)
    for _ in range(3):
        dp = params.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, params.shape))
        dh = h0.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, h0.shape))
        dc = None if c0 is None else c0.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, c0.shape))
        hs, _ = reference.run(cell, dp, x, [0], dh, dc)
        moved |= ~(np.abs(hs[:, 0] - ref).max(axis=-1) <= SENSITIVITY)
    return moved
