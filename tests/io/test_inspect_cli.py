"""The ``mpmmu inspect`` command on the real sample files."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from mpmmu.cli import main

UNREADABLE = {"MR_truncated.dcm", "reportsi.dcm", "no_meta.dcm"}


def test_inspect_writes_previews_and_names_errors(dicom_samples_dir, tmp_path, capsys):
    names = ["RG3_J2KI.dcm", "examples_ybr_color.dcm", "examples_palette.dcm", *sorted(UNREADABLE)]
    files = [str(dicom_samples_dir / name) for name in names]
    previews = tmp_path / "previews"

    status = main(["inspect", *files, "--preview-dir", str(previews), "--json"])
    captured = capsys.readouterr()

    assert status == 1
    assert "Traceback" not in captured.err
    error_lines = captured.err.splitlines()
    assert len(error_lines) == len(UNREADABLE)
    assert any("MR_truncated.dcm: Pixel Data (7FE0,0010) is truncated" in line for line in error_lines)
    assert any("reportsi.dcm: the DICOM file has no Pixel Data" in line for line in error_lines)
    for line in error_lines:
        assert "Error:" not in line  # no internal class name such as ImageReadError

    summaries = [json.loads(line) for line in captured.out.splitlines()]
    readable = [summary for summary in summaries if "error" not in summary]
    assert len(readable) == 3
    for summary in readable:
        preview = np.asarray(Image.open(summary["preview"]))
        assert preview.dtype == np.uint8
        assert "PatientName" not in summary["header"]
    ybr = next(summary for summary in readable if summary["file"].endswith("examples_ybr_color.dcm"))
    assert ybr["frame_index"] == 15
    assert ybr["frames"] == 30
    # MONOCHROME1 preview: the unexposed border is white.
    assert np.asarray(Image.open(previews / "RG3_J2KI.png"))[0, 0] == 255


def test_inspect_text_output_and_frame(dicom_samples_dir, tmp_path, capsys):
    copy = tmp_path / "cine_without_extension"
    shutil.copyfile(dicom_samples_dir / "examples_ybr_color.dcm", copy)

    status = main(["inspect", str(copy), "--frame", "3"])
    output = capsys.readouterr().out

    assert status == 0
    assert "frame_index: 3" in output
    assert "TransferSyntax: JPEG Baseline (Process 1)" in output


def test_inspect_frame_out_of_range_is_one_line(dicom_samples_dir, capsys):
    status = main(["inspect", str(dicom_samples_dir / "examples_ybr_color.dcm"), "--frame", "99"])
    error = capsys.readouterr().err
    assert status == 1
    assert "frame 99 was requested but the file has 30 frame(s)" in error
    assert "Traceback" not in error


def test_inspect_non_image_error_is_plain(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"plain text, not an image\n" * 10)
    status = main(["inspect", str(path)])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert error == (
        f"{path}: notes.txt (250 bytes) is neither a DICOM file nor a PNG, JPEG, TIFF, BMP or PGM image; "
        "check that the right file was chosen"
    )
