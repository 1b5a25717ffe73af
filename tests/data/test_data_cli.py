"""The ``mpmmu data`` command."""

from __future__ import annotations

from mpmmu.cli import main
from mpmmu.data.manifest import read_manifest


def test_data_build_writes_four_manifests(bus_bra_dir, tmp_path, capsys):
    status = main(["data", "build", "--data", str(bus_bra_dir.parent), "--out", str(tmp_path), "--seed", "1"])
    output = capsys.readouterr().out

    assert status == 0
    for name in ("bus_bra.csv", "mini_mias.csv", "pseudo_pairs_ultrasound.csv", "pseudo_pairs_mammogram.csv"):
        assert read_manifest(tmp_path / name)
    assert "  all         1268        607    1875      1064" in output
    assert "4 findings without location skipped" in output
    assert "upper bound" in output


def test_data_build_reports_missing_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPMMU_DATA", str(tmp_path / "absent"))

    status = main(["data", "build", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err

    assert status == 2
    assert len(error.strip().splitlines()) == 1
    assert "absent/bus-bra' not found" in error
    assert "MPMMU_DATA" in error


def test_data_synthetic_writes_manifest(tmp_path, capsys):
    status = main(["data", "synthetic", "--out", str(tmp_path), "--n", "2", "--size", "64"])

    assert status == 0
    assert len(read_manifest(tmp_path / "manifest.csv", check_files=True)) == 4
    assert "wrote 4 synthetic cases" in capsys.readouterr().out
