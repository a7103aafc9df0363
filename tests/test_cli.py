"""The product surface: every subcommand's --help, a flag budget, one-way layering, no history."""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from skillgym.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
# Growing the CLI is a decision: raise this number in the same change that adds a flag.
# compare: --out --methods --tasks --seeds --steps --library --data --workers --eval-every --eval-episodes
# data libero: --out --demos --tasks --episodes --seed --overwrite
# extract --labeler (label with a saved labeler), train-skills --instructions (language conditioning)
# data libero --frames (record LIBERO without drawing frames), train-skills --decoder-obs-noise (robust skills)
FLAG_BUDGET = 92
REMOVED = ("--autoregressive", "--prior-z-target", "--window-starts", "--detach-progress", "--follow-through",
           "--include-hinge", "--prior-uniform-mix", "--reconstruction")


def subcommands(parser: argparse.ArgumentParser, name: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every leaf subcommand of ``parser`` by its command line."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {name: parser}
    found = {}
    for sub in subs:
        for child_name, child in sub.choices.items():
            found.update(subcommands(child, f"{name} {child_name}".strip()))
    return found


def flags(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"]


def test_public_flags_stay_within_budget():
    commands = subcommands(build_parser())
    assert set(commands) == {"data kitchen", "data libero", "data merge", "data show", "extract", "download",
                             "train-skills",
                             "skills show", "train-rl", "run", "compare"}
    counts = {name: flags(p) for name, p in commands.items()}
    total = sum(len(f) for f in counts.values())
    assert total <= FLAG_BUDGET, counts
    every = {f for fs in counts.values() for f in fs}
    assert not every & set(REMOVED)


@pytest.mark.parametrize("command", sorted(subcommands(build_parser())))
def test_every_subcommand_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = subcommands(build_parser())[command]
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, f"{command}: {action.dest} has no help"
    assert "usage: skillgym" in text


def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["extract", str(tmp_path / "missing"), "--out", str(tmp_path / "labels"), "--k", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("skillgym extract: error: k must be >= 2") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["extract", "data", "--seed", "-1"],
    ["train-skills", "labels", "--seed", "-1"],
    ["skills", "show", "library", "--seed", "-1"],
    ["train-skills", "labels", "--lr", "inf"],
    ["train-skills", "labels", "--lr", "nan"],
    ["train-rl", "--target-kl-d", "nan"],
    ["train-rl", "--target-kl-z", "inf"],
    ["train-rl", "--target-kl-z", "-1"],
    ["train-rl", "--seed", "-1"],
    ["train-rl", "--seed", str(2**32)],
])
def test_bad_numbers_are_refused_before_anything_is_written(tmp_path, capsys, argv):
    option = argv[-2]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    expected = {"--seed": "--seed must be >= 0", "--lr": "lr must be a finite number > 0"}.get(
        option, "must be a finite number of nats")
    assert expected in err and not (tmp_path / "out").exists()


def _round_trip_configs():
    from skillgym.data.record import RecordArgs
    from skillgym.extract.config import ExtractArgs
    from skillgym.rl.train import TrainRLArgs
    from skillgym.skills.train import TrainSkillsArgs

    return [
        ("skillgym data kitchen", RecordArgs(out=Path("d"), episodes=3, clean_labels=False,
                                             subtasks=("kettle", "light switch", "microwave", "slide cabinet"),
                                             eval_prefix_fraction=0.0)),
        ("skillgym extract", ExtractArgs(dataset=Path("d"), out=Path("l"), k=5, progress=False, engine="ray")),
        ("skillgym train-skills", TrainSkillsArgs(labels="l", out="lib", steps=5, state_skip=False, obs="pixels",
                                                  decoder="open_loop", instructions=False)),
        ("skillgym train-rl", TrainRLArgs(steps=1000, gamma_per_step=False, alpha_z="auto_0.1")),
    ]


@pytest.mark.parametrize("prog, config", _round_trip_configs(), ids=lambda x: x if isinstance(x, str) else "")
def test_the_command_line_of_a_config_parses_back_to_it(prog, config):
    from skillgym.cli.options import command_line, parse_options

    line = command_line(prog, config)
    namespace = build_parser().parse_args(shlex.split(line)[1:])
    assert parse_options(type(config), namespace) == config, line


def test_a_choice_outside_its_list_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-skills", "labels", "--out", "lib", "--obs", "depth"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --obs: invalid choice: 'depth'" in err and "state" in err and "pixels" in err


def test_train_rl_defaults_are_the_documented_setting():
    ns = build_parser().parse_args(["train-rl", "SkillKitchen-v0", "--steps", "300000", "--seed", "0"])
    from skillgym.cli.options import parse_options
    from skillgym.rl.train import TrainRLArgs

    args = parse_options(TrainRLArgs, ns)
    assert (args.alpha_d, args.alpha_z, args.target_kl_z, args.gamma, args.gamma_per_step) == \
        (0.1, "auto_0.01", 2.5, 0.995, True)


def test_stages_load_without_the_simulator_or_the_envs():
    code = ("import sys, skillgym.extract, skillgym.skills, skillgym.extract.labeler, skillgym.skills.train; "
            "assert 'mujoco' not in sys.modules and 'skillgym.envs' not in sys.modules, "
            "[m for m in sys.modules if m.startswith(('mujoco', 'skillgym.envs'))]")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_layers_import_one_way():
    """skills/ and extract/ import neither envs/ nor tasks/; tasks/ imports no stage."""
    rules = {"skills": r"skillgym\.(envs|tasks)", "extract": r"skillgym\.(envs|tasks|skills|data\.record)",
             "tasks": r"skillgym\.(data|extract|skills|envs|rl)"}
    offenders = []
    for package, pattern in rules.items():
        for path in (ROOT / "skillgym" / package).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(rf"^\s*(from|import) {pattern}\b", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_the_repository_speaks_of_the_product_only():
    pattern = re.compile(r"(?i:\bsessions? ?[0-9]|\bsession-[0-9]|\bissue[ -]?#?[0-9]+)|\bSPEC( §|\b)")
    hits = []
    for folder in ("skillgym", "training", "benchmarks", "tests", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and path.name != Path(__file__).name:
                hits += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                         if pattern.search(line)]
    hits += [f"README.md:{i}" for i, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1)
             if pattern.search(line)]
    assert not hits, hits


@pytest.mark.parametrize(("command", "handler", "advice"), [
    (["train-rl"], "train_rl", "run the same command again to start it over"),
    (["train-rl", "--out", "{tmp}/rl"], "train_rl", "run the same command again to continue from its last"),
    (["train-skills", "labels", "--out", "{tmp}/library"], "train_skills", "run the same command again to start"),
    (["train-skills", "labels", "--out", "{tmp}/run"], "train_skills", "add --resume to the same command"),
    (["compare", "--out", "{tmp}/cmp"], "compare", "run the same command again to continue where it stopped"),
])
def test_an_interrupted_command_says_what_running_it_again_does(monkeypatch, capsys, tmp_path, command, handler,
                                                                 advice):
    checkpoint = tmp_path / "run" / "checkpoint" / "state.json"  # a skill-training run that made a checkpoint
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("{}")
    (tmp_path / "rl" / "checkpoint").mkdir(parents=True)  # a SkillSAC run that made one
    for name in ("weights.safetensors", "buffer.npz", "state.json"):
        (tmp_path / "rl" / "checkpoint" / name).write_text("")

    def interrupted(_):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"skillgym.cli.commands.{handler}", interrupted)
    with pytest.raises(SystemExit) as exc:
        main([word.format(tmp=tmp_path) for word in command])
    assert exc.value.code == 130 and advice in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1"])
def test_a_kl_coefficient_must_be_finite_and_not_negative(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-rl", "--alpha-z", value])
    assert exit_info.value.code == 2
    assert "a KL coefficient must be a finite number >= 0" in capsys.readouterr().err
