"""Bad input: each case is one row of the table in docs/scale.md (what was tried, what the
user gets). The CLI must answer with one line naming the problem, exit status 2, and no
traceback. Then property-based tests of the study-file parser and of settings through the store."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmsearch import Cell, evaluate, run_study
from lstmsearch.config import parse_study, study_toml
from lstmsearch.errors import ConfigError
from lstmsearch.errors import LstmsearchError
from lstmsearch.store import Store
from lstmsearch.query import settings_of
from lstmsearch.store.rows import rows_table

from search_helpers import MASKED, study_text, write_study

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=cwd or ROOT, timeout=120)
    return r


def one_line_error(r, pattern):
    import re

    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstmsearch: error: "), r.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


BASE = study_text("s", "data/s")


def _edit(old, new):
    assert old in BASE
    return BASE.replace(old, new)


# (case, study text, expected message)
STUDY_CASES = [
    ("malformed TOML", BASE.replace("[cell]", "[cell"), r"bad\.toml: not valid TOML"),
    ("unknown cell", _edit('kind = "lstm"', 'kind = "lstn"'), r"\[cell\].*lstn"),
    ("unknown task", _edit('kind = "recall_first"', 'kind = "recall_firts"'), r"\[task\].*recall_firts"),
    ("zero hidden size", _edit("hidden = 3", "hidden = 0"), r"\[cell\] hidden must be > 0, got 0"),
    ("negative hidden size", _edit("hidden = 3", "hidden = -4"), r"\[cell\] hidden must be > 0, got -4"),
    ("zero length", _edit("length = 6", "length = 0"), r"\[task\] length must be from 1"),
    ("negative sequences", _edit("sequences = 24", "sequences = -1"), r"\[eval\] sequences must be > 0"),
    ("zero budget", _edit("settings = 200", "settings = 0"), r"\[budget\] settings must be > 0"),
    ("NaN bound", _edit("low = -3.0", "low = nan"), r"low must be a finite number, got nan"),
    ("infinite bound", _edit("high = 20.0", "high = inf"), r"high must be a finite number, got inf"),
    ("inverted bounds", _edit("low = -10.0\nhigh = 10.0", "low = 10.0\nhigh = -10.0"), r"needs low < high"),
    ("unknown key", _edit("hidden = 3", "hidden = 3\nhiden = 4"), r"\[cell\] has no key 'hiden'"),
    ("wrong type", _edit("hidden = 3", 'hidden = "3"'), r"\[cell\] hidden must be an integer"),
]


@pytest.mark.parametrize("case,text,pattern", STUDY_CASES, ids=[c[0] for c in STUDY_CASES])
def test_bad_study_files(tmp_path, case, text, pattern):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        from lstmsearch.config import load_study

        load_study(tmp_path / "bad.toml")
    if case in ("malformed TOML", "NaN bound", "zero hidden size"):  # and the CLI says it in one line
        one_line_error(cli("run", "bad.toml", cwd=tmp_path), pattern)


@pytest.fixture(scope="module")
def gru_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    p, out = write_study(tmp, name="g", strategy="sweep", budget=60, cell="gru", keep_weights=5)
    run_study(p)
    return tmp, p, out


def test_name_collision_with_other_content(gru_study):
    tmp, p, out = gru_study
    other = tmp / "other.toml"  # same study name and folder, different content
    other.write_text(p.read_text().replace("hidden = 3", "hidden = 5"))
    line = one_line_error(cli("run", other), r"holds results of a study with different content")
    assert "give this study another [study] name or out" in line
    assert Store(out).count() == 60  # the other study's results are untouched


def test_reproduce_a_row_that_does_not_exist(gru_study):
    tmp, p, out = gru_study
    one_line_error(cli("reproduce", out, 987654), r"has no row 987654 \(row ids 0 to 59; lstmsearch top lists")
    one_line_error(cli("show", out, 60), r"has no row 60")


def test_export_a_gru_row_as_lstm(gru_study, tmp_path):
    tmp, p, out = gru_study
    one_line_error(cli("export", out, 0, "--format", "npz", "--cell", "lstm", "-o", tmp_path / "x.npz"),
                   r"row 0 of study g is a gru setting \(H=3\); it cannot be exported as lstm")
    assert not (tmp_path / "x.npz").exists()
    # from Python: a GRU setting given to an LSTM cell is refused by its size
    from lstmsearch.reproduction import row_setting

    _, _, setting = row_setting(out, 0)
    with pytest.raises(LstmsearchError):
        Cell("lstm", 3).torch_state_dict(setting)
    r = cli("export", out, 0, "--format", "npz", "--cell", "gru", "-o", tmp_path / "y.npz")
    assert r.returncode == 0 and (tmp_path / "y.npz").exists()


def test_unreachable_storage_url(tmp_path):
    pytest.importorskip("psycopg")
    from pg_server import free_port

    p, out = write_study(tmp_path, strategy="optuna", budget=64)
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/nothing"
    for cmd in (["run", p, "--storage", url], ["worker", p, "--storage", url], ["run", p, "--workers", "2",
                                                                                 "--storage", url]):
        line = one_line_error(cli(*cmd), r"cannot open the Optuna storage postgresql://postgres:\*\*\*@127\.0\.0\.1")
        assert "secret" not in line  # the password is not printed
    one_line_error(cli("run", p, "--storage", "nosuchdb://x"), r"cannot open the Optuna storage nosuchdb://x")


def test_workers_and_storage_need_an_optuna_study(tmp_path):
    p, out = write_study(tmp_path, strategy="sweep", budget=64)
    one_line_error(cli("worker", p), r"workers share an Optuna study; study s uses strategy sweep.*--dask")
    one_line_error(cli("run", p, "--workers", "0"), r"workers must be a positive integer")
    one_line_error(cli("run", p, "--storage", "sqlite:///x.db"), r"--storage is the Optuna storage of strategy optuna")


# ------------------------------------------------------------------- property-based
_VALUES = st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.booleans(), st.lists(st.integers(-3, 3), max_size=3))
_KEYS = {"cell": ["kind", "hidden", "inputs", "outputs", "hiden"],
         "task": ["kind", "length", "lag", "dist"],
         "eval": ["sequences", "heldout", "seed", "backend", "readout", "ridge", "solved"],
         "budget": ["settings", "seconds"], "store": ["keep_weights", "max_part_rows"],
         "strategy": ["kind", "batch", "method", "sampler", "popsize"]}


@st.composite
def mutated_study(draw):
    doc = tomllib.loads(BASE)
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(sorted(_KEYS)))
        key = draw(st.sampled_from(_KEYS[table]))
        doc.setdefault(table, {})[key] = draw(_VALUES)
    return study_toml(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_study())
def test_parser_accepts_or_gives_one_clear_error(text):
    """Any mutation of a valid study file is either accepted (and then self-consistent) or
    refused with a ConfigError naming the file -- never another exception."""
    try:
        cfg = parse_study(text, "fuzz.toml")
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml: ") and "\n" not in msg.strip()
        return
    assert cfg.cell.hidden >= 1 and cfg.task.length >= 1 and cfg.eval.sequences >= 1
    assert cfg.cell.inputs == cfg.task.n_inputs and cfg.cell.outputs == cfg.task.n_outputs
    assert cfg.budget_settings is None or cfg.budget_settings >= 1
    assert parse_study(text, "fuzz.toml").identity() == cfg.identity()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_parser_on_garbage(data):
    try:
        parse_study(data.decode("utf-8", "replace"), "junk.toml")
    except ConfigError as exc:
        assert str(exc).startswith("junk.toml: ")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(kind=st.sampled_from(["rnn_tanh", "rnn_relu", "lstm", "gru"]), hidden=st.integers(1, 6),
       n=st.integers(1, 5), seed=st.integers(0, 2 ** 31), keep=st.booleans())
def test_settings_round_trip_through_the_store(tmp_path_factory, kind, hidden, n, seed, keep):
    """flatten -> rows -> Parquet part -> read -> settings_of -> unflatten gives back every
    block bit for bit (weights kept), or the same setting rebuilt from its sweep key."""
    tmp = tmp_path_factory.mktemp("rt")
    text = study_text("rt", tmp / "rt", cell=kind, hidden=hidden, space='[space]\nkind = "full"\nscale = 7.0\n',
                      keep_weights='"all"' if keep else 0)
    cfg = parse_study(text, "rt.toml")
    cell = cfg.cell
    rng = np.random.default_rng(seed)
    # a sweep's settings (regenerable from the key) with a random readout spliced in
    from lstmsearch.search.sweep import SweepStrategy

    store = Store(cfg.out)
    from lstmsearch.store.manifest import prepare_manifest

    store.write_manifest(prepare_manifest(cfg, store))
    sw = SweepStrategy(cfg, cfg.space_obj, store, cfg.strategy)
    batch = sw.ask(n)
    readout = rng.standard_normal((n, cell.n_readout)).astype(np.float32)
    full = cell.with_readout(batch.params, readout)
    blocks = cell.unflatten(full)
    assert np.array_equal(cell.flatten(blocks), full)
    table = pa.table({
        "readout": pa.FixedSizeListArray.from_arrays(pa.array(readout.reshape(-1)), cell.n_readout),
        "mse": rng.random(n), "nmse": rng.random(n), "max_abs_err": rng.random(n), "finite": np.ones(n, bool)})
    rows = rows_table(cfg, "sweep", batch, table, store.next_row(), np.full(n, keep), {}, 0.1, 0)
    store.append(rows)
    back = Store(cfg.out).read()
    got = settings_of(cfg, Store(cfg.out), back)
    if not keep:  # a row below the best keep_weights keeps no readout: it is fitted again, as evaluate fits it
        ev = cfg.eval
        fitted = evaluate(cell, batch.params, cfg.task, n_sequences=ev.sequences, seed=ev.seed, n_heldout=ev.heldout,
                          ridge=ev.ridge).column("readout").combine_chunks().flatten().to_numpy().reshape(n, -1)
        assert back.column("readout").null_count == n
        full = cell.with_readout(batch.params, fitted)
        blocks = cell.unflatten(full)
    assert np.array_equal(got, full)
    for name, block in cell.unflatten(got).items():
        assert np.array_equal(block, blocks[name])
