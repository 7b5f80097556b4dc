"""benchmarks/gpu/run_check.sh and fetch_wheels.sh: cheap checks that they still fit the project.

They run on a lent GPU machine, where a typo costs the whole loan: here, without a GPU, the
network or the wheels folder, check that both scripts parse, that every option the check
passes to benchmarks/bench_cuda.py and to the lstmsearch CLI is accepted, that the simulation's
edits of studies/quickstart.toml still apply, and that each base dependency is either on the
GPU image or fetched as a wheel.
"""

import importlib.util
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
CHECK = (GPU / "run_check.sh").read_text()
FETCH = (GPU / "fetch_wheels.sh").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", ["run_check.sh", "fetch_wheels.sh"])
def test_scripts_parse(script):
    out = subprocess.run(["bash", "-n", str(GPU / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_files_used_exist():
    for rel in ("tests/test_cuda.py", "benchmarks/bench_cuda.py", "studies/quickstart.toml", "pyproject.toml"):
        assert rel in CHECK, rel
        assert (ROOT / rel).is_file(), rel


def _bench_argvs():
    """The argument lists run_check.sh gives bench_cuda.py (each cells placeholder filled in)."""
    lines = re.findall(r"python benchmarks/bench_cuda\.py (.*)", CHECK)
    cells = re.findall(r"step_bench ([\w,]+) ;;", CHECK)
    assert len(lines) == 2 and len(cells) == 2, (lines, cells)
    return [shlex.split(line.replace('"$1"', c)) for line in lines for c in cells]


def test_bench_options_are_accepted(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("bench_cuda", ROOT / "benchmarks" / "bench_cuda.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # parse the options, then stop before touching numba.cuda
    monkeypatch.setattr(bench.kcuda, "gpu_status", lambda: (False, "stopped by the test"))
    for argv in _bench_argvs():
        for cell in argv[argv.index("--cells") + 1].split(","):
            assert cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"), cell
        assert bench.main(argv) == 0, argv  # an unknown option exits with status 2
        assert "stopped by the test" in capsys.readouterr().out


def test_cli_options_are_accepted():
    from lstmsearch.cli.main import build_parser, cmd_run, cmd_top

    parser = build_parser()
    run = re.search(r'lstmsearch run "\$study" (.*)', CHECK).group(1)
    top = re.search(r'lstmsearch top (.*)', CHECK).group(1)
    a = parser.parse_args(["run", "studies/quickstart.toml"] + shlex.split(run.replace('${budget[@]+"${budget[@]}"}', "--budget 16")))
    assert a.func is cmd_run and a.backend == "cuda" and a.quiet and a.budget == 16 and a.out
    b = parser.parse_args(["top"] + shlex.split(top))
    assert b.func is cmd_top and b.k == 5


def test_simulation_edits_apply_to_quickstart():
    """Each sed edit of the simulated run matches exactly one line of studies/quickstart.toml."""
    toml = (ROOT / "studies" / "quickstart.toml").read_text()
    edits = re.findall(r"-e 's/(.*?)/(.*?)/'", CHECK)
    assert len(edits) == 6
    lines = toml.splitlines()
    for pattern, _ in edits:
        rx = re.compile(pattern.replace("{", r"\{"))
        assert sum(bool(rx.search(line)) for line in lines) == 1, pattern
    assert f"= {len(edits)} ]" in CHECK  # the script's own count of changed lines


def _array(name):
    body = re.search(rf"^{name}=\((.*?)\)[ \t]*(#[^\n]*)?$", FETCH, re.S | re.M).group(1)
    return {w.lower().replace("_", "-") for line in body.splitlines() for w in line.split("#")[0].split()}


def test_every_base_dependency_is_on_the_image_or_fetched():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    on_image, fetched = _array("ON_IMAGE"), _array("PURE") | _array("COMPILED")
    assert not on_image & fetched
    wanted = project["dependencies"] + [r for r in project["optional-dependencies"]["test"]
                                        if re.match(r"(pytest|hypothesis)\b", r)]
    for req in wanted:
        name = re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert name in on_image or name in fetched, f"{name}: add it to fetch_wheels.sh"
