"""The training ledger (docs/training-log.csv) renders, and its rows say what was shipped."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ledger():
    spec = importlib.util.spec_from_file_location("_training_ledger", ROOT / "scripts" / "training_ledger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_reads_the_first_clause_of_the_note():
    shipped = _ledger().shipped
    assert shipped({"note": "2,369 crops/s median; -7.5 % vs round 4"})
    assert not shipped({"note": "not shipped: -0.27 % vs round 6; the shipped weights stay"})
    assert not shipped({"note": "+69.3 % vs bmshj2018-factorized: not shipped (target +5 %)"})
    assert not shipped({"note": "failed: the density model barely moved"})
    assert shipped({"note": "unchanged; a later round was not shipped"})


def test_the_ledger_rows_are_whole_and_render(tmp_path):
    ledger = _ledger()
    entries = ledger.rows()
    assert entries, "the ledger is empty"
    for r in entries:  # a run's total includes its round (a new lineage may restart the total)
        assert 0 <= int(r["crops_round"]) <= int(r["crops_total"]), r
        for key in ("bd_bmshj2018_hyperprior", "bd_mbt2018_mean", "bd_vtm"):
            assert r[key] == "" or abs(float(r[key])) < 1000, r
    text = ledger.table(entries)
    assert text.count("\n") == len(entries) + 2
    ledger.plot(entries, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_an_unshipped_run_sits_off_the_lineage_hours():
    rows = [{"model": "m", "gpu_minutes": "60", "bd_bmshj2018_hyperprior": "10", "note": "first"},
            {"model": "m", "gpu_minutes": "30", "bd_bmshj2018_hyperprior": "9", "note": "not shipped: small"},
            {"model": "m", "gpu_minutes": "60", "bd_bmshj2018_hyperprior": "5", "note": "from the first"}]
    assert _ledger().curve_points(rows)["m"] == [(1.0, 10.0, True), (1.5, 9.0, False), (2.0, 5.0, True)]
