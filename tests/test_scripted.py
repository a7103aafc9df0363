"""Fast checks of the scripted kitchen controller (a few short rollouts, < 60 s)."""

from __future__ import annotations

import numpy as np
import pytest

from skillgym.data.scripted import ScriptedKitchenController, eval_prefix, sample_subtask_order
from skillgym.tasks.kitchen import ALL_TASKS, DEFAULT_TASKS, KitchenTaskEnv


def _rollout(tasks, seed, max_steps=200):
    env = KitchenTaskEnv(tasks=tasks, max_episode_steps=max_steps)
    env.reset(seed=seed)
    controller = ScriptedKitchenController(env, tasks, np.random.default_rng(seed))
    actions, labels, info = [], [], {"completed_tasks": []}
    while not controller.finished and len(actions) < max_steps:
        labels.append(controller.current_subtask)
        action = controller.act()
        actions.append(action)
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    env.close()
    return np.array(actions), labels, info["completed_tasks"], controller


def test_sample_subtask_order_never_evaluation_order():
    rng = np.random.default_rng(0)
    orders = [sample_subtask_order(rng) for _ in range(2000)]
    assert all(len(o) == 4 and len(set(o)) == 4 for o in orders)
    assert all(set(o) <= set(ALL_TASKS) for o in orders)
    assert all(tuple(o) != DEFAULT_TASKS for o in orders)
    assert len({tuple(o) for o in orders}) > 600  # really random (719 possible orders)
    # every subtask as frequent as in a uniform draw of 4 of 7 (4/7 of the orders)
    for task in ALL_TASKS:
        assert 0.53 < np.mean([task in o for o in orders]) < 0.62, task
    both = [o for o in orders if "hinge cabinet" in o and "slide cabinet" in o]
    assert both and all(o.index("slide cabinet") < o.index("hinge cabinet") for o in both)


def test_orders_without_the_hinge_cabinet_draw_as_from_the_other_six():
    """Adding the hinge cabinet to the default pool leaves every other episode as it was."""
    six = tuple(t for t in ALL_TASKS if t != "hinge cabinet")
    without = 0
    for i in range(300):
        a, b = (np.random.default_rng(np.random.SeedSequence([0, i])) for _ in range(2))
        prefix = eval_prefix(a, 0.5)
        assert eval_prefix(b, 0.5) == prefix
        order = sample_subtask_order(a, prefix=prefix)
        if "hinge cabinet" in order:
            continue
        without += 1
        assert order == sample_subtask_order(b, pool=six, prefix=prefix)
        assert a.random() == b.random()  # the rest of the episode draws the same numbers
    assert 100 < without < 200


def test_eval_prefix_orders_start_like_the_evaluation_task_but_never_equal_it():
    rng = np.random.default_rng(1)
    prefixes = [eval_prefix(rng, 0.5) for _ in range(2000)]
    orders = [sample_subtask_order(rng, prefix=p) for p in prefixes]
    assert 0.45 < np.mean([len(p) > 0 for p in prefixes]) < 0.55
    assert {len(p) for p in prefixes} == {0, 1, 2, 3}
    for p, o in zip(prefixes, orders, strict=True):
        assert tuple(o[: len(p)]) == p == DEFAULT_TASKS[: len(p)]
        assert len(set(o)) == 4 and tuple(o) != DEFAULT_TASKS
    # fraction 0 draws nothing, so datasets recorded before the option stay reproducible
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert eval_prefix(a, 0.0) == ()
    assert a.random() == b.random()
    with pytest.raises(ValueError, match="fraction"):
        eval_prefix(rng, 1.5)
    with pytest.raises(ValueError, match="prefix"):
        sample_subtask_order(rng, prefix=DEFAULT_TASKS)
    # three subtasks of the order and a pool of its four leave only the order itself: an error, not an endless draw
    with pytest.raises(ValueError, match="leave only the evaluation order"):
        sample_subtask_order(rng, pool=DEFAULT_TASKS, prefix=DEFAULT_TASKS[:3])


def test_any_pool_a_recording_accepts_draws_every_episode():
    from skillgym.data.record import RecordArgs

    pools = [DEFAULT_TASKS + ("top burner",), ("kettle", "light switch", "slide cabinet", "hinge cabinet")]
    for pool, prefix_fraction in zip(pools, (1.0, 0.0), strict=True):
        args = RecordArgs(out="unused", subtasks=pool, eval_prefix_fraction=prefix_fraction)
        for i in range(200):
            rng = np.random.default_rng(np.random.SeedSequence([0, i]))
            prefix = eval_prefix(rng, args.eval_prefix_fraction, windows=i % 2 == 0)
            order = sample_subtask_order(rng, pool=args.subtasks, prefix=prefix)
            assert set(order) <= set(pool) and tuple(order) != DEFAULT_TASKS


def test_eval_windows_demonstrate_every_transition_of_the_evaluation_order_but_never_all_four():
    rng = np.random.default_rng(2)
    windows = [eval_prefix(rng, 1.0, windows=True) for _ in range(2000)]
    orders = [sample_subtask_order(rng, prefix=w) for w in windows]
    starts = {DEFAULT_TASKS.index(w[0]) for w in windows}
    assert starts == {0, 1, 2, 3} and {len(w) for w in windows} == {1, 2, 3}
    for w, o in zip(windows, orders, strict=True):
        i = DEFAULT_TASKS.index(w[0])
        assert w == DEFAULT_TASKS[i : i + len(w)] and tuple(o[: len(w)]) == w
        assert len(set(o)) == 4 and tuple(o) != DEFAULT_TASKS
    last = ("bottom burner", "light switch")
    with_last = np.mean([any(tuple(o[j : j + 2]) == last for j in range(3)) for o in orders])
    prefixes = [sample_subtask_order(rng, prefix=eval_prefix(rng, 1.0)) for _ in range(2000)]
    assert with_last > 0.25 > 0.05 > np.mean([any(tuple(o[j : j + 2]) == last for j in range(3)) for o in prefixes])


def test_actions_are_valid_and_deterministic():
    a1, labels, _, _ = _rollout(["top burner"], seed=3, max_steps=40)
    a2, _, _, _ = _rollout(["top burner"], seed=3, max_steps=40)
    assert a1.dtype == np.float32 and a1.shape[1] == 9
    assert np.all(np.abs(a1) <= 1.0)
    np.testing.assert_array_equal(a1, a2)
    assert set(labels) == {"top burner"}
    a3, _, _, _ = _rollout(["top burner"], seed=4, max_steps=40)
    assert not np.array_equal(a1, a3)


def test_clean_action_is_the_executed_one_without_its_noise():
    """DART labels: ``clean_action`` differs from the executed action by the arm noise only."""
    env = KitchenTaskEnv(tasks=["top burner"], max_episode_steps=40)
    env.reset(seed=3)
    controller = ScriptedKitchenController(env, ["top burner"], np.random.default_rng(3), action_noise=0.1)
    gaps = []
    for _ in range(30):
        action = controller.act()
        gaps.append(action - controller.clean_action)
        env.step(action)
    env.close()
    gaps = np.array(gaps)
    assert np.all(gaps[:, 7:] == 0.0)  # the gripper is never noisy
    assert 0.05 < gaps[:, :7].std() < 0.15  # ≈ the noise (a little less where actions clip at ±1)
    env = KitchenTaskEnv(tasks=["top burner"], max_episode_steps=5)
    env.reset(seed=3)
    quiet = ScriptedKitchenController(env, ["top burner"], np.random.default_rng(3), action_noise=0.0)
    first = quiet.act()
    env.close()
    np.testing.assert_array_equal(first, quiet.clean_action)


@pytest.mark.parametrize("task", ["top burner", "microwave"])
def test_subtask_completes_in_isolation(task):
    _, _, completed, controller = _rollout([task], seed=0, max_steps=120)
    assert completed == [task]
    assert controller.finished and controller.failed_subtasks == []
    assert controller.current_subtask is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hinge_cabinet_opens_in_one_pull_from_reset(seed):
    actions, _, completed, controller = _rollout(["hinge cabinet"], seed=seed, max_steps=120)
    assert completed == ["hinge cabinet"] and controller.failed_subtasks == []
    assert len(actions) < 90  # one grasp and one pull (a re-grasp takes ≈ 40 steps more)


@pytest.mark.parametrize("tasks, seed", [
    (["hinge cabinet", "microwave", "top burner", "light switch"], 0),
    (["slide cabinet", "hinge cabinet", "kettle", "bottom burner"], 1),
])
def test_chains_with_the_hinge_cabinet_complete(tasks, seed):
    actions, labels, completed, controller = _rollout(tasks, seed=seed, max_steps=400)
    assert completed == tasks and controller.failed_subtasks == []
    assert [t for i, t in enumerate(labels) if i == 0 or labels[i - 1] != t] == tasks


def test_give_up_is_reported():
    env = KitchenTaskEnv(tasks=["slide cabinet"], max_episode_steps=50)
    env.reset(seed=0)
    controller = ScriptedKitchenController(env, ["slide cabinet"], np.random.default_rng(0),
                                           step_budget=5)
    for _ in range(10):
        if controller.finished:
            break
        env.step(controller.act())
    assert controller.finished
    assert controller.failed_subtasks == ["slide cabinet"]


def test_follow_through_ends_a_subtask_inside_the_success_threshold():
    """By default a push stops the moment the subtask counts, just inside the env's threshold;
    with ``follow_through`` it goes on until the knob is that much further."""
    from skillgym.tasks.kitchen import BONUS_THRESH

    distance = {}
    for follow in (0.0, 0.2):
        env = KitchenTaskEnv(tasks=["bottom burner"], max_episode_steps=10**6)
        env.reset(seed=0)
        controller = ScriptedKitchenController(env, ["bottom burner"], np.random.default_rng(0),
                                               follow_through=follow)
        for _ in range(150):
            if controller.finished:
                break
            env.step(controller.act())
        assert controller.finished and controller.failed_subtasks == []
        distance[follow] = env.task_distance("bottom burner")
        env.close()
    assert BONUS_THRESH - 0.1 < distance[0.0] < BONUS_THRESH
    assert distance[0.2] < BONUS_THRESH - 0.2


def _hand_touches(env, body: int) -> bool:
    model, data = env.model, env.data
    wrist = model.body("panda0_link7").id

    def under(b, ancestor):
        while b > 0 and b != ancestor:
            b = model.body_parentid[b]
        return b == ancestor

    for contact in data.contact[: data.ncon]:
        pair = [model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]]
        if any(under(b, wrist) for b in pair) and any(under(b, body) for b in pair):
            return True
    return False


@pytest.mark.parametrize("seed", [0, 1])
def test_kettle_is_set_down_and_let_go_before_the_next_subtask(seed):
    """The kettle counts as placed while still carried; the hand sets it down upright and backs out of
    its handle before moving on, so the next subtask does not drag it along."""
    tasks = ["kettle", "microwave"]
    env = KitchenTaskEnv(tasks=tasks, max_episode_steps=400)
    env.reset(seed=seed)
    controller = ScriptedKitchenController(env, tasks, np.random.default_rng(seed), action_noise=0.1)
    kettle = env.model.body("kettle").id
    while controller.current_subtask == "kettle":
        env.step(controller.act())
    assert not _hand_touches(env, kettle)
    placed = env.data.xpos[kettle].copy()
    completed = []
    while not controller.finished:
        _, _, _, _, info = env.step(controller.act())
        completed = info["completed_tasks"]
    assert completed == tasks and controller.failed_subtasks == []
    assert np.linalg.norm(env.data.xpos[kettle] - placed) < 0.01
    assert env.data.xmat[kettle][8] > 0.99  # upright
    env.close()
