"""``scripts/install.sh``: a virtual environment in the checkout, never the
system interpreter (PEP 668), apt only for what is missing.

The fast tests run the script on stand-ins for python3, apt-get and sudo that
log their arguments; the slow one runs it for real with the system python3
(the interpreter that refuses pip installs on Debian 12) on a copy of the
checkout, installing the package without its dependencies.
"""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "install.sh")

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python3 $*" >> "$LOG"
case "$1" in
  -c) exit 1 ;;  # no ensurepip: python3-venv is missing
  --version) echo "Python 3 (stand-in)" ;;
  -m) mkdir -p "$3/bin" && cp "$(dirname "$0")/venv-python" "$3/bin/python" ;;
esac
"""
FAKE_VENV_PYTHON = """#!/usr/bin/env bash
echo "venv-python $*" >> "$LOG"
if [ "$1" = -c ]; then echo 0.1.0; fi
"""
LOGGER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$LOG"
"""


def test_script_parses():
    subprocess.run(["bash", "-n", SCRIPT], check=True)
    subprocess.run(["bash", "-n", os.path.join(ROOT, ".ci", "run")], check=True)


@pytest.fixture
def checkout(tmp_path):
    """A checkout holding only the script, and stand-ins on PATH."""
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "repo" / "scripts")
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in [("python3", FAKE_PYTHON), ("venv-python", FAKE_VENV_PYTHON),
                       ("apt-get", LOGGER), ("sudo", '#!/usr/bin/env bash\nexec "$@"\n')]:
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    log = tmp_path / "log"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "LOG": str(log),
           "PYTHON": str(fake / "python3")}
    env.pop("BSRNN_TF_SKIP_APT", None)
    return tmp_path / "repo", env, log


def _install(repo, env):
    return subprocess.run(["bash", str(repo / "scripts" / "install.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_installs_python3_venv_then_the_package_into_dot_venv(checkout):
    repo, env, log = checkout
    out = _install(repo, env)
    assert out.returncode == 0, out.stderr
    lines = log.read_text().splitlines()
    apt = [line for line in lines if line.startswith("apt-get install")]
    assert len(apt) == 1 and "python3-venv" in apt[0].split()
    assert "--no-install-recommends" in apt[0]
    assert "python3 -m venv .venv" in lines
    assert "venv-python -m pip install --quiet --disable-pip-version-check -e .[dev]" in lines
    assert not any(line.startswith("python3 -m pip") for line in lines)  # not the system's
    assert (repo / ".venv" / "bin" / "python").exists()
    assert "run it with .venv/bin/python" in out.stdout
    # A second run reuses the venv: no venv package needed, no new venv.
    log.unlink()
    out = _install(repo, env)
    assert out.returncode == 0, out.stderr
    lines = log.read_text().splitlines()
    assert not any("python3-venv" in line or "-m venv" in line for line in lines), lines


def test_installs_the_sound_fonts_by_name_and_never_musescore():
    text = open(SCRIPT).read()
    assert "musescore" not in text.lower() and "avldrums" not in text.lower()
    for package in ("fluidsynth", "fluid-soundfont-gm", "timgm6mb-soundfont", "ffmpeg",
                    "hydrogen-drumkits", "espeak-ng", "fluidr3mono-gm-soundfont",
                    "csound-soundfont", "opl3-soundfont"):
        assert package in text


def test_without_apt_it_names_what_is_missing(checkout):
    repo, env, log = checkout
    out = _install(repo, {**env, "BSRNN_TF_SKIP_APT": "1"})
    assert out.returncode == 1
    assert "missing system packages" in out.stderr and "python3-venv" in out.stderr
    assert not (repo / ".venv").exists()


@pytest.mark.slow
def test_real_install_into_a_venv_with_the_system_python(tmp_path):
    """The system python3 (PEP 668 on Debian 12) makes .venv; the package
    goes there, editable, without its dependencies (so this takes seconds;
    pip needs an index, or a local mirror, for setuptools)."""
    system = shutil.which("python3", path="/usr/bin") or shutil.which("python3")
    if subprocess.run([system, "-c", "import ensurepip, venv"]).returncode:
        pytest.skip(f"{system} cannot create virtual environments (apt install python3-venv)")
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        if os.path.exists(os.path.join(ROOT, name)):
            os.makedirs(repo / os.path.dirname(name), exist_ok=True)
            shutil.copy(os.path.join(ROOT, name), repo / name)
    env = {**os.environ, "PYTHON": system, "PIP_NO_DEPS": "1", "BSRNN_TF_SKIP_APT": "1",
           "PATH": f"/usr/bin:{os.environ['PATH']}"}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    out = subprocess.run(["bash", "scripts/install.sh"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode and ("No matching distribution" in out.stderr
                           or "missing system packages" in out.stderr):
        pytest.skip(f"no package index or system packages here: {out.stderr.strip()[-300:]}")
    assert out.returncode == 0, out.stderr[-3000:]
    venv_python = repo / ".venv" / "bin" / "python"
    where = subprocess.run([str(venv_python), "-c", "import bsrnn_tf; print(bsrnn_tf.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout
    assert where.strip() == str(repo / "bsrnn_tf" / "__init__.py")
    system_has_it = subprocess.run([system, "-c", "import bsrnn_tf"], cwd=tmp_path, env=env,
                                   capture_output=True).returncode == 0
    assert not system_has_it
