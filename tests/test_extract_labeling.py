"""Labelling: Eq. 1 differences, seeded K-means, edge-honest median filter, per-trajectory
segments, the SkillLabeler artifact, the report and the ``extract`` command."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy.signal import medfilt

from skillgym.cli import main
from skillgym.data.dataset import Episode, open_dataset, write_minari_dataset
from skillgym.extract.clustering import (
    ClusteringError,
    assign_labels,
    compute_embeddings,
    embedding_differences,
)
from skillgym.extract.encoders import EncoderInputError, make_encoder
from skillgym.extract.labeler import LabelerError, SkillLabeler, extract_skills, label_dataset
from skillgym.extract.labels import SkillLabels
from skillgym.extract.segments import find_segments, label_runs, median_filter


# -- synthetic data ---------------------------------------------------------------------------
def synthetic_episode(rng: np.random.Generator, phases: int = 3, phase_len: int = 20, image_size: int | None = 32) -> Episode:
    """An episode of ``phases`` behaviours: in phase p the state drifts along direction p and a
    coloured square moves across the frame. ``subtasks`` records the phase (ground truth)."""
    t = phases * phase_len
    directions = np.eye(59)[:phases] * 0.05
    steps = np.repeat(directions, phase_len, axis=0) + rng.normal(0, 0.002, (t, 59))
    states = np.vstack([rng.normal(0, 0.01, (1, 59)), np.zeros((t, 59))])
    states[1:] = states[0] + np.cumsum(steps, axis=0)
    frames = None
    if image_size:
        frames = np.zeros((t + 1, image_size, image_size, 3), np.uint8)
        for i in range(t + 1):
            p = min(i // phase_len, phases - 1)
            x = int((i % phase_len) / phase_len * (image_size - 8))
            frames[i, 4:12, x : x + 8, p % 3] = 255
            frames[i, -6:, :, :] = 40 * p
    return Episode(states=states, actions=np.repeat(np.eye(9, dtype=np.float32)[:phases], phase_len, axis=0),
                   rewards=np.zeros(t, np.float32), terminations=np.zeros(t, bool),
                   truncations=np.arange(t) == t - 1, frames=frames,
                   subtasks=np.repeat(np.arange(phases), phase_len).astype(np.int16))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    episodes = [synthetic_episode(rng, phase_len=int(rng.integers(15, 25))) for _ in range(6)]
    return open_dataset(write_minari_dataset(tmp_path_factory.mktemp("ds") / "tiny", [episodes], 32))


@pytest.fixture(scope="module")
def other_dataset(tmp_path_factory):
    rng = np.random.default_rng(1)
    episodes = [synthetic_episode(rng, phase_len=18) for _ in range(3)]
    return open_dataset(write_minari_dataset(tmp_path_factory.mktemp("ds2") / "other", [episodes], 32))


# -- Eq. 1 ------------------------------------------------------------------------------------
def test_embedding_differences_eq1():
    f = np.array([[1.0, 1.0], [2.0, 3.0], [4.0, 0.0]], np.float32)
    np.testing.assert_array_equal(embedding_differences(f.copy()), [[1, 2], [1, 2], [3, -1]])  # e_1 := e_2
    np.testing.assert_array_equal(embedding_differences(f[:1].copy()), [[0, 0]])


def test_embeddings_are_per_trajectory(tiny_dataset, tmp_path):
    emb = compute_embeddings(tiny_dataset, make_encoder("state"), tmp_path / "e.npy", progress=False)
    assert emb.shape == (tiny_dataset.total_steps, 59)
    start = 0
    for i in range(len(tiny_dataset)):
        ep = tiny_dataset.episode(i, frames=False)
        t = ep.num_steps
        want = ep.states[:t] - ep.states[0]  # observations 0..T-1, relative to this episode's first
        want[0] = want[1]
        np.testing.assert_allclose(emb[start : start + t], want, atol=1e-6)
        start += t


# -- median filter ----------------------------------------------------------------------------
def test_median_filter_keeps_edges_honest():
    const = np.full(20, 5, np.int16)
    np.testing.assert_array_equal(median_filter(const, 7), const)  # incl. first/last 3 frames
    assert median_filter(np.full(2, 3), 7).tolist() == [3, 3]  # shorter than the kernel
    # the reference's zero padding pulls edge labels towards 0 / a minority label
    x = np.array([6, 2, 6, 6, 6, 6, 6, 6, 6, 6, 6, 2, 6])
    assert medfilt(x, 7)[0] == 2 and medfilt(x, 7)[-1] == 2
    assert median_filter(x, 7).tolist() == [6] * len(x)


def test_each_episode_is_filtered_on_its_own(tmp_path):
    # Episode 0 ends in two steps of skill 1, episode 1 starts with skill 0: filtered across the boundary,
    # those two steps would take episode 1's label; filtered on its own, episode 0 keeps them.
    phases = np.repeat([[0.5, 0.0], [0.0, -0.5]], 6, axis=0)
    episode = Episode(states=np.zeros((13, 2)), actions=phases)
    ds = open_dataset(write_minari_dataset(tmp_path / "data", [[episode, episode]]))
    labeler = SkillLabeler.fit(ds, encoder="action", k=2, kernel=5, min_length=1, progress=False)
    raw = np.array([0] * 10 + [1] * 2 + [0] * 12)
    smooth = labeler.labels_from_raw(raw, ds).frame_labels
    assert smooth[:12].tolist() == [0] * 10 + [1] * 2 and smooth[12:].tolist() == [0] * 12


def test_median_filter_matches_edge_padded_scipy():
    rng = np.random.default_rng(0)
    for n in (1, 5, 7, 30, 101):
        x = rng.integers(0, 8, n)
        want = medfilt(np.pad(x, 3, mode="edge").astype(float), 7)[3:-3].astype(x.dtype)
        np.testing.assert_array_equal(median_filter(x, 7), want)
    with pytest.raises(ValueError, match="odd"):
        median_filter(x, 4)


# -- segments ---------------------------------------------------------------------------------
def test_segments_never_cross_trajectories_or_merge():
    # episode 0 ends with skill 1, episode 1 starts with skill 1: two segments, not one
    labels = np.array([0] * 10 + [1] * 6 + [1] * 8 + [2] * 2 + [1] * 9)
    offsets = np.array([0, 16, 35])
    seg = find_segments(labels, offsets, min_length=5)
    assert seg.tolist() == [[0, 0, 10, 0], [0, 10, 16, 1], [1, 0, 8, 1], [1, 10, 19, 1]]
    # the 2-step run of skill 2 is dropped, not merged into a neighbour


def test_segments_random_property():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 60, 40)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = median_filter(rng.integers(0, 4, offsets[-1]), 1)
    seg = find_segments(labels, offsets, min_length=3, absorb_lead_in=False)
    for ep, a, b, s in seg:
        assert 0 <= a < b <= lengths[ep] and b - a >= 3
        lab = labels[offsets[ep] : offsets[ep + 1]]
        assert np.all(lab[a:b] == s)
        assert (a == 0 or lab[a - 1] != s) and (b == lengths[ep] or lab[b] != s)  # maximal runs
    assert label_runs(np.array([], int)).shape == (0, 3)
    # with the lead-in absorbed, only each episode's first segment changes: it starts at 0
    absorbed = find_segments(labels, offsets, min_length=3)
    first = np.r_[True, seg[1:, 0] != seg[:-1, 0]]
    assert np.all(absorbed[first, 1] == 0)
    np.testing.assert_array_equal(absorbed[~first], seg[~first])
    np.testing.assert_array_equal(np.delete(absorbed, 1, axis=1), np.delete(seg, 1, axis=1))


def test_segments_absorb_the_lead_in():
    # The first steps of every episode sit in the "no change yet" cluster (9); in episode 0 that
    # run is too short to be a segment, so the reset state would precede no skill at all.
    labels = np.array([9, 9, 9, 1, 1, 1, 1, 1, 1] + [9] * 6 + [2] * 5)
    offsets = np.array([0, 9, 20])
    assert find_segments(labels, offsets, min_length=5).tolist() == [[0, 0, 9, 1], [1, 0, 6, 9], [1, 6, 11, 2]]
    assert find_segments(labels, offsets, min_length=5, absorb_lead_in=False)[0].tolist() == [0, 3, 9, 1]
    # an episode with no run long enough still gives no segment
    assert find_segments(np.array([1, 2, 1, 2]), np.array([0, 4]), min_length=3).shape == (0, 4)


# -- SkillLabeler -----------------------------------------------------------------------------
def test_fit_is_deterministic_and_uses_every_cluster(tiny_dataset):
    fitted = SkillLabeler.fit(tiny_dataset, "state", k=3, seed=7, progress=False)
    a = fitted.label(tiny_dataset, progress=False)
    b = SkillLabeler.fit(tiny_dataset, "state", k=3, seed=7, progress=False).label(tiny_dataset, progress=False)
    np.testing.assert_array_equal(a.frame_labels, b.frame_labels)
    other_seed = SkillLabeler.fit(tiny_dataset, "state", k=3, seed=8, progress=False)
    assert not np.array_equal(other_seed.centroids, fitted.centroids)  # the seed reaches K-means
    np.testing.assert_array_equal(a.segments, b.segments)
    assert set(np.unique(a.frame_labels)) == {0, 1, 2}
    assert a.metadata["seed"] == 7 and a.metadata["median_kernel"] == 7 and a.metadata["encoder"] == "state"


def test_k_must_fit_the_data(tiny_dataset):
    with pytest.raises(ClusteringError, match="larger than the number of frames"):
        SkillLabeler.fit(tiny_dataset, "state", k=10_000, progress=False)
    with pytest.raises(ClusteringError, match="fit_samples"):
        SkillLabeler.fit(tiny_dataset, "state", k=8, fit_samples=4, progress=False)


def test_save_load_labels_a_new_dataset_with_the_same_clusters(tiny_dataset, other_dataset, tmp_path):
    labeler = SkillLabeler.fit(tiny_dataset, "state", k=4, seed=0, fit_samples=100, progress=False)
    labeler.save(tmp_path / "labeler")
    assert sorted(p.name for p in (tmp_path / "labeler").iterdir()) == ["labeler.json", "labeler.npz"]
    loaded = SkillLabeler.load(tmp_path / "labeler")
    np.testing.assert_array_equal(loaded.centroids, labeler.centroids)
    new = loaded.label(other_dataset, progress=False)
    assert new.dataset_fingerprint == other_dataset.fingerprint
    np.testing.assert_array_equal(new.frame_labels, labeler.label(other_dataset, progress=False).frame_labels)
    assert new.num_episodes == 3 and len(new.frame_labels) == other_dataset.total_steps
    with pytest.raises(LabelerError, match="not a labeler folder"):
        SkillLabeler.load(tmp_path / "nowhere")


def test_embedding_cache_is_reused(tiny_dataset, tmp_path):
    calls = []
    enc = make_encoder("state", dim=tiny_dataset.state_dim)  # sized: every call is an episode
    original = enc.encode
    enc.encode = lambda x: calls.append(len(x)) or original(x)
    SkillLabeler.fit(tiny_dataset, enc, k=3, cache_dir=tmp_path, progress=False)
    n = len(calls)
    SkillLabeler.fit(tiny_dataset, enc, k=5, cache_dir=tmp_path, progress=False)  # another K: no re-encoding
    assert n == len(tiny_dataset) and len(calls) == n


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _fill_with_nan(path):
    rows = np.load(path)
    rows[:] = np.nan
    np.save(path, rows)


@pytest.mark.parametrize("damage", [_truncate, _fill_with_nan])
def test_a_damaged_embedding_cache_is_computed_again(tiny_dataset, tmp_path, capsys, damage):
    path = tmp_path / "cache" / "embeddings-state.npy"
    whole = np.asarray(compute_embeddings(tiny_dataset, make_encoder("state"), path, progress=False)).copy()
    damage(path)
    again = compute_embeddings(tiny_dataset, make_encoder("state"), path, progress=False)
    assert np.array_equal(np.asarray(again), whole)
    assert f"the embedding cache {path}" in capsys.readouterr().out


def test_an_interrupted_embedding_pass_resumes_at_the_next_episode(tiny_dataset, tmp_path):
    state = make_encoder("state", dim=tiny_dataset.state_dim)
    whole = np.asarray(compute_embeddings(tiny_dataset, state, tmp_path / "a" / "e.npy", progress=False)[:])
    calls = []
    enc = make_encoder("state", dim=tiny_dataset.state_dim)
    original = enc.encode

    def encode_then_stop(states):
        calls.append(len(states))
        if len(calls) == 4:
            raise RuntimeError("stopped")  # as if the process were stopped while encoding episode 3
        return original(states)

    enc.encode = encode_then_stop
    path = tmp_path / "b" / "e.npy"
    with pytest.raises(RuntimeError, match="stopped"):
        compute_embeddings(tiny_dataset, enc, path, progress=False)
    partial = path.with_name("e.tmp.npy")
    with open(partial, "ab") as f:
        f.write(b"\0" * 100)  # and a half-written row: cut away on resume
    assert not path.exists()
    calls.clear()
    enc.encode = lambda states: calls.append(len(states)) or original(states)
    resumed = np.asarray(compute_embeddings(tiny_dataset, enc, path, progress=False)[:])
    assert len(calls) == len(tiny_dataset) - 3  # episodes 0-2 were kept
    assert np.array_equal(resumed, whole)
    assert not partial.exists() and not partial.with_suffix(".json").exists()

    # A partial file of another encoder is not resumed: everything is encoded again.
    other = make_encoder("action", dim=tiny_dataset.action_dim)
    other_calls = []
    other_encode = other.encode
    other.encode = lambda actions: other_calls.append(len(actions)) or other_encode(actions)
    partial.write_bytes(b"not an embedding file")
    partial.with_suffix(".json").write_text(json.dumps({"encoder": "state"}))
    compute_embeddings(tiny_dataset, other, tmp_path / "b" / "e.npy", progress=False)
    assert len(other_calls) == len(tiny_dataset)


def test_batched_assignment_matches_full(tmp_path):
    rng = np.random.default_rng(0)
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(1000, 16))
    x[:] = rng.normal(size=(1000, 16))
    c = rng.normal(size=(5, 16)).astype(np.float32)
    full = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(assign_labels(x, c, batch_size=37), full)


def test_frames_encoder_needs_frames(tmp_path):
    episodes = [synthetic_episode(np.random.default_rng(0), image_size=None)]
    ds = open_dataset(write_minari_dataset(tmp_path / "noframes", [episodes], None))
    with pytest.raises(EncoderInputError, match="stores no frames"):
        SkillLabeler.fit(ds, "efficientnet-lite0", k=2, progress=False)


# -- end to end: extract_skills + report + CLI --------------------------------------------------
def test_extract_writes_labels_labeler_and_report(tiny_dataset, tmp_path):
    labels = extract_skills(tiny_dataset, tmp_path / "run", encoder="efficientnet-lite0", k=3, seed=0,
                            min_length=3, progress=False)
    loaded = SkillLabels.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.segments, labels.segments)
    for png in ("pca.png", "lengths.png", "frames.png", "timeline.png"):
        with Image.open(tmp_path / "run" / "report" / png) as im:
            im.verify()
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text())
    assert summary["num_segments"] == len(labels.segments) and len(summary["segments_per_skill"]) == 3
    assert 0 < summary["fraction_steps_kept"] <= 1 and -1 <= summary["silhouette"] <= 1
    assert -0.1 < summary["subtask_ami"] <= 1
    assert np.array(summary["confusion"]["counts"]).sum() == tiny_dataset.total_steps
    assert (tmp_path / "run" / "labeler" / "labeler.npz").is_file()
    assert (tmp_path / "run" / "cache" / "embeddings-efficientnet-lite0.npy").is_file()


def test_cli_extract(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["extract", str(tiny_dataset.path), "--encoder", "action", "--k", "3", "--seed", "1",
                 "--out", str(out), "--min-length", "4", "--no-progress"]) == 0
    labels = SkillLabels.load(out)
    assert labels.metadata["encoder"] == "action" and labels.metadata["min_length"] == 4
    assert np.all(labels.segments[:, 2] - labels.segments[:, 1] >= 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--encoder", "nope"], "unknown encoder 'nope'"),
        (["--k", "5000"], "larger than the number of steps"),
        (["--k", "1"], "k must be >= 2"),
        (["--kernel", "4"], "kernel must be odd"),
        (["--kernel", "100001"], "kernel=100001 is longer than every episode of the dataset"),
        (["--min-length", "100000"], "min_length=100000 is longer than every episode"),
        (["--encoder", "state", "--weights", "x.pt"], "weights are for the r3m"),
        (["--image-size", "64"], "stores its frames at 32 px"),
        (["--encoder", "r3m-18", "--weights", "/nonexistent/model.pt"], "does not exist"),
    ],
)
def test_cli_bad_arguments(tiny_dataset, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["extract", str(tiny_dataset.path), "--out", str(tmp_path / "x"), "--no-progress", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "labels.json").exists()


@pytest.fixture(scope="module")
def state_labeler(tiny_dataset, tmp_path_factory):
    return SkillLabeler.fit(tiny_dataset, "state", k=3, progress=False).save(tmp_path_factory.mktemp("lab") / "labeler")


@pytest.fixture
def no_report(monkeypatch):
    """Labelling without its report (plots and scores take seconds; these tests do not read them)."""
    import skillgym.extract.report

    monkeypatch.setattr(skillgym.extract.report, "write_report", lambda *a, **kw: None)


@pytest.mark.filterwarnings("always::UserWarning")  # the suite ignores them; a user sees this one
def test_cli_warns_about_skills_without_segments(tiny_dataset, tmp_path, capsys, no_report):
    assert main(["extract", str(tiny_dataset.path), "--encoder", "state", "--k", "40", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 0
    used = len(set(SkillLabels.load(tmp_path / "x").segments[:, 3].tolist()))
    assert used < 40  # 18 behaviours in the data
    err = capsys.readouterr().err
    assert f"warning: only {used} of the 40 skills occur in the segments" in err and "lower --k" in err


def test_cli_without_segments_names_the_folder_and_keeps_its_labels(tiny_dataset, state_labeler, tmp_path, capsys):
    out = tmp_path / "labels"
    label_dataset(tiny_dataset, out, SkillLabeler.load(state_labeler), report=False, progress=False)
    before = (out / "labels.npz").read_bytes(), (out / "labels.json").read_bytes()
    longest = str(max(tiny_dataset.episode_lengths))  # no skill runs through a whole episode
    with pytest.raises(SystemExit) as e:
        main(["extract", str(tiny_dataset.path), "--encoder", "state", "--k", "3", "--out", str(out),
              "--min-length", longest, "--no-progress"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert f"{out}: no segment to write" in err and "--min-length" in err
    assert ((out / "labels.npz").read_bytes(), (out / "labels.json").read_bytes()) == before


@pytest.mark.parametrize(("change", "message"), [
    ({"median_kernel": "7"}, "median_kernel must be an int >= 1, got '7'"),
    ({"min_length": 0}, "min_length must be an int >= 1"),
    ({"k": 3.0}, "k must be an int >= 2"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"fit_samples": None}, "fit_samples must be an int"),
    ({"median_kernel": 4}, "median_kernel must be odd"),
    ({"encoder_config": {"foo": 1}}, "encoder 'state' has no setting 'foo'"),
])
def test_labeler_json_with_wrong_settings_is_named(state_labeler, tmp_path, change, message):
    folder = tmp_path / "labeler"
    shutil.copytree(state_labeler, folder)
    meta = folder / "labeler.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), **change}))
    with pytest.raises(LabelerError, match="skillgym extract") as e:
        SkillLabeler.load(folder)
    assert str(e.value).startswith(f"{meta}: ") and message in str(e.value)


def test_cli_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "--encoder", "state"])
    assert "no dataset at" in capsys.readouterr().err


def test_npy_rows_reads_like_an_array(tmp_path):
    from skillgym.extract.clustering import NpyRows

    x = np.random.default_rng(0).normal(size=(9000, 5)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    rows = NpyRows(tmp_path / "x.npy")
    assert rows.shape == (9000, 5) and rows.dtype == np.float16 and len(rows) == 9000
    idx = np.array([8999, 3, 4100, 4, 0])  # unsorted, across blocks
    np.testing.assert_array_equal(rows[idx], x[idx])
    np.testing.assert_array_equal(rows[10:5000], x[10:5000])
    np.testing.assert_array_equal(np.asarray(rows), x)


def test_labeler_with_r3m_and_a_moved_checkpoint(other_dataset, tmp_path):
    import shutil

    from skillgym.extract.encoders import write_random_r3m_checkpoint

    ckpt = write_random_r3m_checkpoint(tmp_path / "a" / "model.pt", size=18, seed=0)
    labeler = SkillLabeler.fit(other_dataset, "r3m-18", k=3, seed=0, encoder_kwargs={"weights": str(ckpt)},
                               progress=False)
    labeler.save(tmp_path / "labeler")
    moved = tmp_path / "b" / "model.pt"
    moved.parent.mkdir()
    shutil.move(ckpt, moved)
    with pytest.raises(Exception, match="does not exist"):
        SkillLabeler.load(tmp_path / "labeler").label(other_dataset, progress=False)
    relabelled = SkillLabeler.load(tmp_path / "labeler", weights=str(moved)).label(other_dataset, progress=False)
    assert relabelled.metadata["encoder"] == "r3m-18" and relabelled.num_skills == 3
    other = write_random_r3m_checkpoint(tmp_path / "c.pt", size=18, seed=1)
    with pytest.raises(Exception, match="not the R3M checkpoint these clusters were fitted with"):
        SkillLabeler.load(tmp_path / "labeler", weights=str(other)).label(other_dataset, progress=False)


def test_docs_custom_encoder_round_trip(tiny_dataset, tmp_path):
    from skillgym.extract.encoders import register_encoder

    class ColourHistogram:
        name, input, dim = "test-colour-hist", "frames", 24

        def __init__(self, bins: int = 8):
            self.bins = bins
            self.dim = 3 * bins

        def encode(self, frames):
            hist = [np.stack([np.histogram(f[..., c], self.bins, (0, 256))[0] for c in range(3)]).ravel()
                    for f in frames]
            return np.asarray(hist, np.float32) / frames[0, ..., 0].size

        def config(self):
            return {"bins": self.bins}

    register_encoder("test-colour-hist", lambda bins=8: ColourHistogram(bins), overwrite=True)
    labeler = SkillLabeler.fit(tiny_dataset, "test-colour-hist", k=3, encoder_kwargs={"bins": 4}, progress=False)
    labeler.save(tmp_path / "lab")
    loaded = SkillLabeler.load(tmp_path / "lab")
    assert loaded.encoder.dim == 12
    np.testing.assert_array_equal(loaded.label(tiny_dataset, progress=False).frame_labels,
                                  labeler.label(tiny_dataset, progress=False).frame_labels)


@pytest.mark.parametrize("change, said", [({"k": 4}, "k 3 -> 4"), ({"kernel": 5}, "median_kernel 7 -> 5"),
                                           ({"min_length": 3}, "min_length 10 -> 3")])
def test_relabelling_a_folder_with_other_settings_says_what_it_replaces(tiny_dataset, tmp_path, change, said):
    settings = dict(encoder="state", k=3, kernel=7, min_length=10, report=False, progress=False)
    extract_skills(tiny_dataset, tmp_path / "labels", **settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        extract_skills(tiny_dataset, tmp_path / "labels", **settings)
        assert not [w for w in caught if "replacing the labels" in str(w.message)]  # the same labels again
        extract_skills(tiny_dataset, tmp_path / "labels", **{**settings, **change})
    (replaced,) = [str(w.message) for w in caught if "replacing the labels" in str(w.message)]
    assert f"other settings ({said})" in replaced
