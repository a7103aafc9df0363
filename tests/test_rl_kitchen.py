"""SkillSAC end to end on the real SkillKitchen-v0 (bundled library), at a tiny budget."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import SubprocVecEnv

import skillgym  # noqa: F401
from skillgym.rl import SkillSAC
from skillgym.rl.checkpoint import CheckpointError, policy_digest
from skillgym.rl.train import RUN_CHECKPOINT, TrainRLArgs, kl_coefficient, train_rl


def test_learn_save_load_predict(tmp_path):
    env = gym.make("SkillKitchen-v0")
    model = SkillSAC("SkillPolicy", env, learning_starts=20, batch_size=16, seed=0)
    model.learn(40)
    assert model.num_low_level_steps >= 40
    model.save(tmp_path / "model")
    loaded = SkillSAC.load(tmp_path / "model")
    obs, _ = env.reset(seed=5)
    a, _ = model.predict(obs, deterministic=True)
    b, _ = loaded.predict(obs, deterministic=True)
    assert a["skill"] == b["skill"]
    np.testing.assert_array_equal(a["arg"], b["arg"])
    mean, _ = evaluate_policy(loaded, env, n_eval_episodes=1)
    assert 0.0 <= mean <= 4.0


def make_kitchen() -> gym.Env:
    # "skillgym:" makes gymnasium import skillgym (which registers the env) in the subprocess too.
    return gym.make("skillgym:SkillKitchen-v0")


def test_subproc_vec_env_with_two_kitchens():
    envs = SubprocVecEnv([make_kitchen, make_kitchen])
    model = SkillSAC("SkillPolicy", envs, learning_starts=10, batch_size=8, seed=0)
    model.learn(20)
    actions, _ = model.predict(envs.reset(), deterministic=False)
    assert len(actions["skill"]) == 2
    envs.close()


def test_train_rl_budget_is_in_low_level_steps(tmp_path):
    result = train_rl(TrainRLArgs(steps=300, seed=0, out=str(tmp_path), learning_starts=10,
                                  eval_every=200, eval_episodes=1, alpha_z="auto_0.01", target_kl_z=1.5))
    assert result["final"]["low_level_steps"] >= 300
    assert [p["low_level_steps"] for p in result["curve"]][0] == 0
    assert (tmp_path / "skillsac" / "model.json").is_file() and (tmp_path / "curve.json").is_file()
    model = SkillSAC.load(tmp_path / "skillsac")
    assert model.alpha_z == "auto_0.01" and model.target_kl_z == 1.5 and model.log_alpha_z is not None


@pytest.mark.parametrize("text, expected", [("0.01", 0.01), ("0", 0.0), ("auto", "auto"), ("auto_0.1", "auto_0.1")])
def test_kl_coefficient_accepts_numbers_and_auto(text, expected):
    assert kl_coefficient(text) == expected


@pytest.mark.parametrize("text", ["-1", "fast", "auto_x", "auto_0"])
def test_kl_coefficient_rejects_bad_values(text):
    with pytest.raises(ValueError, match=text):
        kl_coefficient(text)


def _kitchen_extract_script():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "training" / "kitchen_extract.py"
    found = importlib.util.spec_from_file_location("kitchen_extract", script)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def _short_skill_library(path) -> str:
    from skillgym.skills.config import LibraryConfig
    from skillgym.skills.library import SkillLibrary

    SkillLibrary.build(LibraryConfig(num_skills=3, max_skill_steps=5)).save(path)  # the bundled one runs up to 30
    return str(path)


def test_kitchen_extract_diagnosis_runs_the_library_the_seed_was_trained_with(tmp_path):
    library = _short_skill_library(tmp_path / "short-skills")
    train_rl(TrainRLArgs(library=library, steps=60, seed=0, out=str(tmp_path / "seed0"), learning_starts=5,
                         eval_every=10_000, eval_episodes=1))
    report = _kitchen_extract_script().diagnose(tmp_path, [0], episodes=1, progress_threshold=None)
    assert report["seeds"][0]["library"] == library
    assert report["seeds"][0]["mean_skill_length"] <= 5
    assert set(report["seeds"][0]["skill_histogram"]) <= {0, 1, 2}
    done_at = report["seeds"][0]["subtask_done_at_step"]
    assert [len(e) for e in done_at] == report["seeds"][0]["counts"]
    assert report["seeds"][0]["episode_steps"] == [280]  # random skills finish no subtask: truncated
    longer = _kitchen_extract_script().diagnose(tmp_path, [0], episodes=1, progress_threshold=None,
                                                max_episode_steps=20)
    assert longer["seeds"][0]["episode_steps"] == [20]
    assert (tmp_path / "diagnosis_20_steps.json").is_file() and (tmp_path / "diagnosis.json").is_file()


def test_kitchen_extract_passes_sac_options_to_the_seed_it_trains(tmp_path):
    import json

    kitchen_extract = _kitchen_extract_script()
    options = {"alpha_d": 0.02, "target_kl_d": 1.5, "alpha_z": "auto_0.01", "target_kl_z": 2.5,
               "gamma": 0.995, "gamma_per_step": True}
    assert set(options) == set(kitchen_extract.SAC_OPTIONS)
    kitchen_extract.run_seed(3, 40, str(tmp_path), _short_skill_library(tmp_path / "short-skills"),
                             eval_every=10_000, eval_episodes=1, sac_options=options)
    args = json.loads((tmp_path / "seed3" / "result.json").read_text())["args"]
    assert {k: args[k] for k in options} == options
    model = SkillSAC.load(tmp_path / "seed3" / "skillsac")
    assert (model.gamma, model.gamma_per_step, model.alpha_d) == (0.995, True, 0.02)


def test_gamma_per_step_discounts_the_kitchen_skill_rewards_with_sacs_gamma():
    from skillgym.envs import SkillSpaceEnv
    from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES
    from skillgym.tasks.kitchen import KitchenTaskEnv

    class RecordInfos(gym.Wrapper):
        def step(self, action):
            out = super().step(action)
            infos.append(out[-1])
            return out

    infos = []
    env = RecordInfos(SkillSpaceEnv(KitchenTaskEnv(), BUNDLED_LIBRARIES["state"]))
    model = SkillSAC("SkillPolicy", env, gamma=0.9, gamma_per_step=True, learning_starts=100, seed=0)
    with pytest.warns(UserWarning, match="no gradient step"):
        model.learn(4)
    expected = [sum(0.9**t * r for t, r in enumerate(info["skill_rewards"])) for info in infos]
    np.testing.assert_allclose(model.replay_buffer.rewards[:4, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(model.replay_buffer.skill_steps[:4, 0], [i["skill_steps"] for i in infos])
    env.close()


# A budget that crosses three episode ends (280 low-level steps each) with gradient steps from the start.
def resumable_run(out, **changes) -> TrainRLArgs:
    return replace(TrainRLArgs(steps=900, seed=1, out=str(out), learning_starts=20, eval_every=250,
                               eval_episodes=1), **changes)


def without_wall_time(curve):
    return [{k: v for k, v in point.items() if k != "wall_seconds"} for point in curve]


def trained_policy(out) -> str:
    return policy_digest(SkillSAC.load(out / "skillsac"))


def test_a_killed_train_rl_continues_to_the_numbers_of_an_uninterrupted_one(tmp_path, capsys):
    straight = train_rl(resumable_run(tmp_path / "straight"))

    out = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-m", "skillgym.cli", "train-rl", "SkillKitchen-v0", "--steps", "900",
                              "--seed", "1", "--out", str(out), "--learning-starts", "20", "--eval-every", "250",
                              "--eval-episodes", "1"],
                             env={**os.environ, "MUJOCO_GL": "egl"}, stderr=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL)
    state = out / RUN_CHECKPOINT / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:
        if state.is_file() and json.loads(state.read_text())["extra"]["curve"][-1]["low_level_steps"] >= 250:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (out / "result.json").exists()

    capsys.readouterr()
    resumed = train_rl(resumable_run(out))
    assert "continuing the run in" in capsys.readouterr().out
    assert without_wall_time(resumed["curve"]) == without_wall_time(straight["curve"])
    assert trained_policy(out) == trained_policy(tmp_path / "straight")
    assert len(resumed["curve"]) >= 4  # evaluated at 0, 250, 500, 750 and at the end


class ObservationSumReward(gym.Wrapper):
    """The kitchen with a reward that every random draw changes (the subtask count rarely moves at this budget)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(np.sum(obs)), terminated, truncated, info


gym.register("ObservationSumKitchen-v0", lambda: ObservationSumReward(gym.make("SkillKitchen-v0")))


def test_a_finished_train_rl_continues_to_a_larger_budget(tmp_path):
    # Continuing evaluates on the episodes an uninterrupted run meets: the returns would show any other one.
    sensitive = dict(env_id="ObservationSumKitchen-v0", eval_episodes=2)
    straight = train_rl(resumable_run(tmp_path / "straight", steps=600, **sensitive))
    train_rl(resumable_run(tmp_path / "grown", steps=300, **sensitive))
    grown = train_rl(resumable_run(tmp_path / "grown", steps=600, **sensitive))
    assert without_wall_time(grown["curve"]) == without_wall_time(straight["curve"])
    assert trained_policy(tmp_path / "grown") == trained_policy(tmp_path / "straight")


def test_train_rl_never_replaces_a_run_it_cannot_continue(tmp_path, capsys):
    out = tmp_path / "run"
    first = train_rl(resumable_run(out, steps=300))
    kept = {name: (out / name).read_bytes() for name in ("result.json", "curve.json", "skillsac/policy.safetensors")}
    kept_checkpoint = (out / RUN_CHECKPOINT / "state.json").read_bytes()
    for changes, why in (({"steps": 200}, "already trained to 300 low-level steps, past --steps 200"),
                         ({"library": _short_skill_library(tmp_path / "other-library")}, "another skill library"),
                         ({"alpha_d": 0.2}, "other options (alpha_d 0.1 -> 0.2)"),
                         ({"seed": 2}, "other options (seed 1 -> 2)")):
        with pytest.raises(FileExistsError, match=re.escape(why) + f".*delete {re.escape(str(out))} to start"):
            train_rl(resumable_run(out, **{"steps": 300, **changes}))
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert (out / RUN_CHECKPOINT / "state.json").read_bytes() == kept_checkpoint

    capsys.readouterr()
    again = train_rl(resumable_run(out, steps=300))  # the same command: the finished run stays as it is
    assert "is finished; its result stays as it is" in capsys.readouterr().out
    assert again["curve"] == first["curve"] and (out / "skillsac/policy.safetensors").read_bytes() == \
        kept["skillsac/policy.safetensors"]
    (out / RUN_CHECKPOINT / "state.json").write_text("{")  # a damaged checkpoint
    with pytest.raises(CheckpointError, match=f"delete {out / RUN_CHECKPOINT} to start the run over"):
        train_rl(resumable_run(out, steps=300))
    assert (out / RUN_CHECKPOINT / "state.json").read_text() == "{"
    (out / RUN_CHECKPOINT / "state.json").write_bytes(kept_checkpoint)
    buffer = out / RUN_CHECKPOINT / "buffer.npz"
    buffer.write_bytes(buffer.read_bytes()[:1000])  # what a full disk leaves
    with pytest.raises(CheckpointError, match=f"corrupt; delete {out / RUN_CHECKPOINT} to start the run over"):
        train_rl(resumable_run(out, steps=600))
    assert buffer.stat().st_size == 1000


def test_train_rl_on_pixels_closes_its_renderers(tmp_path):
    done = subprocess.run([sys.executable, "-m", "skillgym.cli", "train-rl", "SkillKitchenPixels-v0", "--steps", "60",
                           "--learning-starts", "5", "--eval-every", "10000", "--eval-episodes", "1",
                           "--out", str(tmp_path / "rl")], env={**os.environ, "MUJOCO_GL": "egl"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EGLError" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-2000:]
