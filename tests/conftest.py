import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
# Stock SB3 creates a fresh /tmp/SB3-<time> folder for every model without a log dir; keep the
# test run's in one place.
os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="skillgym-tests-sb3-"))
