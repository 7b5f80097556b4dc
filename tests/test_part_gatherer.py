"""Small batches are gathered into parts: the order on disk (a batch's rows before the strategy
state told about them), the row and time thresholds, and a gathered run's rows equal a run that
writes a part per batch."""

import numpy as np
import pytest

from lstmsearch import load_results, run_study
from lstmsearch.run import writer as writer_mod
from lstmsearch.run.writer import PartGatherer, Writer
from lstmsearch.store.generations import GenerationStore

from search_helpers import write_study


class Log:
    def __init__(self):
        self.events = []

    def write(self, jobs):
        self.events.append(("rows", [j[0] for j in jobs]))

    def state(self, name):
        self.events.append(("state", name))


def test_rows_go_before_the_strategy_state_told_about_them():
    log, w = Log(), Writer()
    g = PartGatherer(w, log.write, max_rows=100, min_rows=10, max_wait_s=1e9)
    g.add(("b0",), 4)
    g.persist(log.state, "after b0")  # held: b0's rows are not written yet
    g.add(("b1",), 4)
    g.persist(log.state, "after b1")
    assert log.events == []  # 8 rows < 10: nothing handed over yet
    g.add(("b2",), 4)  # 12 rows: one part of three batches, then the states held behind it
    w.flush()
    assert log.events == [("rows", ["b0", "b1", "b2"]), ("state", "after b0"), ("state", "after b1")]
    g.persist(log.state, "after b2")  # nothing gathered: written at once, behind the part
    w.flush()
    assert log.events[-1] == ("state", "after b2")
    g.add(("b3",), 4)
    g.flush()
    w.close()
    assert log.events[-1] == ("rows", ["b3"])


def test_a_part_never_exceeds_max_rows_and_waits_at_most_max_wait():
    log, w = Log(), Writer()
    g = PartGatherer(w, log.write, max_rows=10, min_rows=1000, max_wait_s=1e9)
    for k in range(5):
        g.add((f"b{k}",), 4)  # a third batch would make 12 > 10 rows: the two before go first
    g.flush()
    w.close()
    assert [e[1] for e in log.events] == [["b0", "b1"], ["b2", "b3"], ["b4"]]
    log, w = Log(), Writer()
    g = PartGatherer(w, log.write, max_rows=10 ** 6, min_rows=10 ** 6, max_wait_s=0.0)
    g.add(("b0",), 1)  # the time limit is up at once: handed over without waiting for rows
    w.close()
    assert log.events == [("rows", ["b0"])]


@pytest.mark.gathered
def test_a_gathered_run_stores_what_a_part_per_batch_run_stores(tmp_path, monkeypatch):
    st = '[strategy]\nkind = "cmaes"\nvariant = "full"\npopsize = 6\nrestarts = "ipop"\n'
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa_, outa = write_study(a, strategy_text=st, budget=6 * 30, keep_weights=5)
    run_study(pa_)
    monkeypatch.setattr(writer_mod, "MIN_PART_ROWS", 1)
    pb, outb = write_study(b, strategy_text=st, budget=6 * 30, keep_weights=5)
    run_study(pb)
    assert len(list((outa / "rows").glob("*.parquet"))) == 1 < len(list((outb / "rows").glob("*.parquet"))) == 30
    assert len(GenerationStore(outa).files()) == 1 and len(GenerationStore(outb).files()) == 30
    cols = ["row", "batch", "index", "nmse", "weights", "readout"]
    assert load_results(outa, columns=cols).equals(load_results(outb, columns=cols))
    ga, gb = (GenerationStore(o).read("cmaes").sort_by("batch") for o in (outa, outb))
    assert ga.equals(gb) and np.array_equal(ga.column("batch").to_numpy(), np.arange(30))
