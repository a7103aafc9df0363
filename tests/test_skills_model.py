"""Skill model: shapes (state / pixels, open / closed loop), windows, and which loss reaches what."""

import numpy as np
import pytest
import torch

from skillgym.skills.config import LibraryConfig
from skillgym.skills.data import SegmentData, make_batch
from skillgym.skills.model import SkillDecoder, SkillVAE

torch.set_num_threads(1)


def tiny_data(obs_kind="state", image_size=16, frame_stack=2):
    rng = np.random.default_rng(0)
    lengths = [50, 40]
    actions = rng.uniform(-1, 1, (sum(lengths), 9)).astype(np.float32)
    states = rng.standard_normal((sum(lengths) + 2, 59)).astype(np.float32)
    frames = None
    if obs_kind == "pixels":
        frames = rng.integers(0, 255, (len(states), image_size, image_size, 3), dtype=np.uint8)
    # segments: a long one (45 > window), a short one, one at an episode end
    segments = np.array([[0, 0, 45, 2], [0, 45, 50, 1], [1, 10, 40, 3]])
    return SegmentData(actions, states, frames, np.array([0, 50]), np.array([0, 51]), segments, np.array([0, 1]))


def config(obs_kind="state", decoder="open_loop", **kw):
    return LibraryConfig(num_skills=4, obs_kind=obs_kind, decoder=decoder, image_size=16, frame_stack=2,
                         max_skill_steps=20, hidden_dim=32, prior_hidden_dim=32, **kw)


@pytest.mark.parametrize("obs_kind", ["state", "pixels"])
@pytest.mark.parametrize("decoder", ["open_loop", "closed_loop"])
@pytest.mark.parametrize("autoregressive", [False, True])
def test_shapes_and_loss(obs_kind, decoder, autoregressive):
    cfg = config(obs_kind, decoder, autoregressive=autoregressive)
    model = SkillVAE(cfg)
    data = tiny_data(obs_kind)
    batch = make_batch(data, np.array([0, 1, 2, 0, 2]), window=20, rng=np.random.default_rng(0), obs_kind=obs_kind,
                       frame_stack=2, closed_loop=decoder == "closed_loop")
    assert batch.actions.shape == (5, 20, 9)
    assert batch.prior_obs.shape == (5, *cfg.obs_shape)
    if decoder == "closed_loop":
        assert batch.step_obs.shape == (5, 20, *cfg.obs_shape)
    if obs_kind == "pixels":
        assert batch.prior_obs.dtype == torch.uint8
    logits, mean, log_std = model.priors(batch.prior_obs)
    assert logits.shape == (5, 4) and mean.shape == (5, 4, 5) and log_std.shape == (5, 4, 5)
    loss, terms = model.loss(batch)
    assert torch.isfinite(loss)
    for key in ("action", "progress", "kl", "prior_d", "prior_z", "prior_acc", "progress_mae"):
        assert torch.isfinite(terms[key])
    # Any batch size works, including 1.
    one = make_batch(data, np.array([1]), window=20, obs_kind=obs_kind, frame_stack=2,
                     closed_loop=decoder == "closed_loop")
    assert torch.isfinite(model.loss(one)[0])


def test_windows_progress_labels_and_masks():
    data = tiny_data()
    # Segment 0 has N=45 actions > window 20: a window at offset 10.
    b = make_batch(data, np.array([0, 1]), window=20, offsets=np.array([10, 0]))
    assert b.lengths.tolist() == [20, 5]
    assert b.skill.tolist() == [2, 1]  # the segment's own label, never a padding value
    np.testing.assert_allclose(b.progress[0].numpy(), (np.arange(11, 31)) / 45, rtol=1e-6)
    # A window starts from the inference start token (zeros) whatever its offset, then teacher forcing.
    np.testing.assert_allclose(b.prev_progress[0].numpy(), np.r_[0, np.arange(11, 30) / 45], rtol=1e-6)
    np.testing.assert_array_equal(b.actions[0].numpy(), data.actions[10:30])
    np.testing.assert_array_equal(b.prev_actions[0, 0].numpy(), np.zeros(9))
    np.testing.assert_array_equal(b.prev_actions[0, 1:].numpy(), data.actions[10:29])
    np.testing.assert_array_equal(b.prior_obs[0].numpy(), data.states[10])  # the window's first state
    # Short segment: progress ends at exactly 1 on its last action; padding is masked and zero.
    np.testing.assert_allclose(b.progress[1, :5].numpy(), np.arange(1, 6) / 5, rtol=1e-6)
    assert b.mask[1].tolist() == [True] * 5 + [False] * 15
    assert float(b.actions[1, 5:].abs().sum()) == 0.0
    np.testing.assert_array_equal(b.prev_actions[1, 0].numpy(), np.zeros(9))  # skill start token
    np.testing.assert_array_equal(b.prior_obs[1].numpy(), data.states[45])
    # Episode 1's segment reads episode 1's arrays (offsets).
    c = make_batch(data, np.array([2]), window=40)
    np.testing.assert_array_equal(c.actions[0, :30].numpy(), data.actions[60:90])
    np.testing.assert_array_equal(c.prior_obs[0].numpy(), data.states[51 + 10])
    # Random offsets stay inside the segment.
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = make_batch(data, np.array([0]), window=20, rng=rng)
        assert 0 < r.progress[0, 0] <= 26 / 45 + 1e-6 and r.progress[0, -1] <= 1.0


def test_windows_starting_anywhere():
    data = tiny_data()
    # Where the env re-plans after capping a 45-step segment at 20 steps: offset 20, then 40.
    b = make_batch(data, np.array([0, 0]), window=20, offsets=np.array([40, 20]))
    assert b.lengths.tolist() == [5, 20]
    np.testing.assert_allclose(b.progress[0, :5].numpy(), np.arange(41, 46) / 45, rtol=1e-6)
    assert b.mask[0].tolist() == [True] * 5 + [False] * 15
    np.testing.assert_array_equal(b.prior_obs[0].numpy(), data.states[40])
    # Random "anywhere" starts reach the whole segment; "inside" starts never pass N - window.
    rng = np.random.default_rng(0)
    firsts = {"inside": set(), "anywhere": set()}
    for mode in firsts:
        for _ in range(300):
            r = make_batch(data, np.array([0, 1]), window=20, rng=rng, window_starts=mode)
            firsts[mode].add(round(float(r.progress[0, 0]) * 45))
            assert r.progress[0, r.lengths[0] - 1] <= 1.0 + 1e-6 and r.progress[1, r.lengths[1] - 1] == 1.0
    assert firsts["inside"] == set(range(1, 27)) and firsts["anywhere"] == set(range(1, 46))
    with pytest.raises(ValueError, match="window_starts"):
        make_batch(data, np.array([0]), window=20, rng=rng, window_starts="middle")
    with pytest.raises(ValueError, match="inside their segments"):
        make_batch(data, np.array([1]), window=20, offsets=np.array([5]))


def test_padding_is_never_a_target():
    model = SkillVAE(config())
    data = tiny_data()
    b = make_batch(data, np.array([1]), window=20)
    b.actions[:, 5:] = 100.0  # garbage in the padding must not change the loss
    b.progress[:, 5:] = 100.0
    torch.manual_seed(0)
    loss_a = model.loss(b)[0]
    b2 = make_batch(data, np.array([1]), window=20)
    torch.manual_seed(0)
    loss_b = model.loss(b2)[0]
    assert torch.allclose(loss_a, loss_b)


def frame_stack_of(data, ep, i, k=2):
    return np.stack([data.frames[data.obs_offset[ep] + max(0, i - j)] for j in range(k - 1, -1, -1)])


def test_pixel_frame_stacks_match_env_convention():
    data = tiny_data("pixels")
    b = make_batch(data, np.array([0, 1]), window=20, offsets=np.array([0, 0]), obs_kind="pixels", frame_stack=2)
    np.testing.assert_array_equal(b.prior_obs[0].numpy(), frame_stack_of(data, 0, 0))  # first frame repeated
    np.testing.assert_array_equal(b.prior_obs[1].numpy(), frame_stack_of(data, 0, 45))


TERMS = ("action", "progress", "kl", "prior_d", "prior_z")


@pytest.mark.parametrize("obs_kind,decoder,autoregressive",
                         [("state", "open_loop", False), ("state", "open_loop", True), ("pixels", "closed_loop", False)])
def test_each_loss_term_reaches_only_its_modules(obs_kind, decoder, autoregressive):
    model = SkillVAE(config(obs_kind, decoder, autoregressive=autoregressive))
    batch = make_batch(tiny_data(obs_kind), np.array([0, 1, 2]), window=20, rng=np.random.default_rng(0),
                       obs_kind=obs_kind, frame_stack=2, closed_loop=decoder == "closed_loop")
    expected = {  # term -> modules that must get gradient; all others must get none
        "action": {"encoder", "decoder"},
        "progress": {"encoder", "decoder"},
        "kl": {"encoder"},
        "prior_d": {"priors"},
        "prior_z": {"priors"},
    }
    for term in TERMS:
        model.zero_grad(set_to_none=True)
        model.loss_terms(batch)[term].backward()
        for name in ("encoder", "decoder", "priors"):
            got = any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters())
            assert got == (name in expected[term]), f"{term} -> {name}: gradient {'present' if got else 'missing'}"
    # detach_progress: the progress term trains the decoder only; the action term is unchanged.
    model.zero_grad(set_to_none=True)
    model.loss_terms(batch, detach_progress=True)["progress"].backward()
    for name in ("encoder", "decoder", "priors"):
        got = any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters())
        assert got == (name == "decoder"), f"detached progress -> {name}"
    with torch.no_grad():
        plain, detached = model.loss_terms(batch, sample=False), model.loss_terms(batch, sample=False, detach_progress=True)
    assert torch.allclose(plain["action"], detached["action"]) and torch.allclose(plain["progress"], detached["progress"])
    # Within the priors: p(d|s) learns only from the skill CE, p(z|s,d) only from the z NLL.
    model.zero_grad(set_to_none=True)
    model.loss_terms(batch)["prior_d"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.priors.z_net.parameters())
    model.zero_grad(set_to_none=True)
    model.loss_terms(batch)["prior_z"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.priors.d_net.parameters())


def test_loss_matches_independent_formulas():
    import torch.nn.functional as F

    model = SkillVAE(config())
    b = make_batch(tiny_data(), np.array([0, 1, 2]), window=20, rng=np.random.default_rng(1))
    total, terms = model.loss(b, beta=1e-3, sample=False)
    with torch.no_grad():
        mean, log_std = model.encoder(b.actions, b.skill, b.lengths)
        pa, pl = model.decoder(b.prev_actions, b.prev_progress, mean, b.skill)
        m = b.mask.numpy()
        # Eq. 2: summed over each window's real steps, averaged over the 3 windows.
        action = np.mean([(((pa - b.actions)[i] ** 2).sum(-1).numpy() * m[i]).sum() for i in range(3)])
        progress = np.mean([(((pl - b.progress)[i] ** 2).numpy() * m[i]).sum() for i in range(3)])
        assert m.sum() > 3 * 2  # windows longer than one step, so sum and mean over steps differ
        var = (2 * log_std).exp()
        kl = (0.5 * (mean**2 + var - 1 - 2 * log_std)).sum(-1).mean()
        logits, zm, zl = model.priors(b.prior_obs)
        ce = F.cross_entropy(logits, b.skill)
        mu, ls = zm[torch.arange(3), b.skill], zl[torch.arange(3), b.skill]
        nll = -torch.distributions.Normal(mu, ls.exp()).log_prob(mean).sum(-1).mean()
    assert np.isclose(float(terms["action"]), action, rtol=1e-5)
    assert np.isclose(float(terms["progress"]), progress, rtol=1e-5)
    assert torch.allclose(terms["kl"], kl, rtol=1e-5)
    assert torch.allclose(terms["prior_d"], ce, rtol=1e-5)
    assert torch.allclose(terms["prior_z"], nll, rtol=1e-5)
    assert np.isclose(float(total), action + progress + 1e-3 * float(kl) + float(ce) + float(nll), rtol=1e-5)
    # With sampling, prior_z scores the sampled z -- or the encoder's mean with prior_z_target="mean".
    sampled = [float(model.loss_terms(b)["prior_z"]) for _ in range(2)]
    assert sampled[0] != sampled[1]
    for _ in range(2):
        assert torch.allclose(model.loss_terms(b, prior_z_target="mean")["prior_z"], nll, rtol=1e-5)
    with pytest.raises(ValueError, match="prior_z_target"):
        model.loss_terms(b, prior_z_target="mode")
    # reconstruction="mean": the same errors averaged over the real steps instead.
    per_step = model.loss_terms(b, sample=False, reconstruction="mean")
    assert np.isclose(float(per_step["action"]), action * 3 / m.sum(), rtol=1e-5)
    assert np.isclose(float(per_step["progress"]), progress * 3 / m.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="reconstruction"):
        model.loss_terms(b, reconstruction="median")


def test_bounded_outputs():
    model = SkillVAE(config())
    batch = make_batch(tiny_data(), np.array([0, 1, 2]), window=20)
    with torch.no_grad():
        for p in model.decoder.head.parameters():
            p.mul_(1000)  # saturate
        a, lp = model.decoder(batch.prev_actions, batch.prev_progress, torch.zeros(3, 5), batch.skill)
    assert a.abs().max() <= 1.0 and lp.min() >= 0.0 and lp.max() <= 1.0


def test_state_skip_is_a_linear_path_from_the_state_to_the_action():
    """With the LSTM's action outputs silenced, the action is tanh(W s_norm + b) exactly."""
    cfg = config("state", "closed_loop", state_skip=True)
    model = SkillVAE(cfg)
    dec = model.decoder
    with torch.no_grad():
        dec.head.weight[:9].zero_()
        dec.head.bias[:9].zero_()
        dec.state_to_action.weight.normal_(0.0, 0.2)
        dec.state_to_action.bias.normal_(0.0, 0.2)
    batch = make_batch(tiny_data(), np.array([0, 1, 2]), window=20, rng=np.random.default_rng(0),
                       closed_loop=True)
    z = torch.zeros(3, 5)
    actions, _ = dec(batch.prev_actions, batch.prev_progress, z, batch.skill, batch.step_obs)
    normalised = dec.obs_encoder[0](batch.step_obs)
    expected = torch.tanh(normalised @ dec.state_to_action.weight.T + dec.state_to_action.bias)
    torch.testing.assert_close(actions, expected)
    # The skip is part of the decoder: the reconstruction term trains it.
    model.loss_terms(batch)["action"].backward()
    assert dec.state_to_action.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kw", [{"lstm_layers": 2, "autoregressive": True},
                                {"obs_kind": "pixels", "decoder": "closed_loop", "frame_stack": 2, "image_size": 32}])
def test_step_by_step_decoding_equals_teacher_forcing(kw):
    """``start``/``step`` run the LSTM that ``forward`` trains, fed its own outputs."""
    config = LibraryConfig(num_skills=4, **kw)
    decoder = SkillDecoder(config).eval()
    torch.manual_seed(0)
    skill, z, steps = torch.tensor([1, 3]), torch.randn(2, config.z_dim), 5
    obs = None
    if decoder.closed_loop:
        obs = torch.randint(0, 255, (2, steps, *config.decoder_obs_shape), dtype=torch.uint8)
    actions, progress = [], []
    with torch.no_grad():
        state = decoder.start(skill, z)
        for t in range(steps):
            a, p, state = decoder.step(state, None if obs is None else obs[:, t])
            actions.append(a)
            progress.append(p)
        actions, progress = torch.stack(actions, 1), torch.stack(progress, 1)
        prev_a = torch.cat([torch.zeros(2, 1, config.action_dim), actions[:, :-1]], 1)
        prev_l = torch.cat([torch.zeros(2, 1), progress[:, :-1]], 1)
        ta, tl = decoder(prev_a, prev_l, z, skill, obs)
    torch.testing.assert_close(ta, actions, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tl, progress, atol=1e-5, rtol=1e-5)
