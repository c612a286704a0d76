"""The gbl-jax command line, run as a user would (subprocess)."""

import subprocess
import sys


def _run(*args):
    return subprocess.run([sys.executable, "-m", "gbl_jax.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_quickstart_prints_the_identity_and_the_saturation_table():
    out = _run("quickstart")
    assert out.returncode == 0, out.stderr
    nll_line = next(line for line in out.stdout.splitlines() if "nll =" in line)
    values = [float(part.split()[0]) for part in nll_line.split("=")[1:]]
    assert abs(values[0] - values[-1]) < 1e-5
    assert "|grad NLL|" in out.stdout


def test_bad_arguments_give_one_line_and_exit_two():
    for args in (["bogus"], ["quickstart", "--seed", "x"]):
        out = _run(*args)
        assert out.returncode == 2
        assert "Traceback" not in out.stderr
        assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("gbl-jax: error:")
