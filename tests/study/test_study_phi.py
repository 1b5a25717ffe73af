"""No patient identifier reaches the study database, its exports or its log.

The cases are DICOM files whose PatientName, PatientID, AccessionNumber and PatientBirthDate contain
marker strings, and the manifest's patient_id column contains another marker. After a study is
created, read, analysed and exported, no marker may appear in the database files' bytes (WAL
included), in any export or in the log.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mpmmu.cli import main
from mpmmu.data.manifest import CaseRow, write_manifest
from mpmmu.io import read_image
from mpmmu.study.records import Task
from mpmmu.study.store import StudyStore

MARKERS = {
    "PatientName": "Zzphi^Markername",
    "PatientID": "ZZPHI-ID-4711",
    "AccessionNumber": "ZZPHI-ACC-0815",
    "PatientBirthDate": "19230417",
}
MANIFEST_PATIENT_MARKER = "ZZPHI-MANIFEST-PATIENT"


def write_dicom(path: Path, modality: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 4000, size=(48, 40), dtype=np.uint16)
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2" if modality == "MG" else "1.2.840.10008.5.1.4.1.1.6.1"
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = modality
    for keyword, value in MARKERS.items():
        setattr(dataset, keyword, value)
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_phi_markers_absent_from_database_exports_and_log(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    rows = []
    for k in range(6):
        label = "malignant" if k % 2 else "benign"
        rows.append(
            CaseRow(
                f"case-{k}",
                f"{MANIFEST_PATIENT_MARKER}-{k}",
                write_dicom(tmp_path / f"mg{k}.dcm", "MG", k),
                write_dicom(tmp_path / f"us{k}.dcm", "US", 100 + k),
                label,
                ultrasound_roi=(2, 2, 20, 20),
            )
        )
    manifest = write_manifest(rows, tmp_path / "manifest.csv")
    db_path = tmp_path / "phi.sqlite3"

    assert main(["study", "create", "--manifest", str(manifest), "--name", "phi", "--readers", "2", "--db", str(db_path)]) == 0
    codes = dict(line.split(",") for line in capsys.readouterr().out.splitlines() if line.startswith("R"))

    with StudyStore(db_path) as store:
        info = store.study("phi")
        for case in store.cases(info.id):
            # Cases are referenced by the hash read_image computes for the same file.
            row = next(row for row in rows if row.case_id == case.case_id)
            assert case.mammogram_sha256 == read_image(row.mammogram_path).sha256
            store.record_ai_result(info.id, case.case_id, 0.9 if case.truth else 0.2, "phi-model")
        for name, code in codes.items():
            reader = store.sign_in(code)
            while isinstance(task := store.next_task(reader.id), Task):
                store.log_event(reader.id, "case_opened", case_id=task.case.case_id, mode=task.mode, once=True)
                if task.mode == "aided":
                    store.log_event(reader.id, "heatmap_opened", case_id=task.case.case_id, mode="aided", detail={"modality": "ultrasound"})
                probability = 80 if task.case.truth else 20
                store.record_read(reader.id, task.case.case_id, task.mode, "4B" if task.case.truth else "3", probability + (name == "R2"))

    exports = []
    for export_format, suffix in (("imrmc", "imrmc"), ("rjafroc", "csv"), ("reads", "csv")):
        out = tmp_path / f"export-{export_format}.{suffix}"
        assert main(["study", "export", "--study", "phi", "--format", export_format, "--out", str(out), "--db", str(db_path)]) == 0
        exports.append(out)
    assert main(["study", "analyse", "--study", "phi", "--json", "--db", str(db_path)]) == 0
    analysis_json = capsys.readouterr().out
    json.loads(analysis_json[analysis_json.index("{") :])
    with open(exports[2], newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 24

    database_files = sorted(tmp_path.glob("phi.sqlite3*"))
    assert database_files, "the database file is missing"
    haystacks = {str(path): path.read_bytes() for path in [*database_files, *exports]}
    haystacks["analysis output"] = analysis_json.encode()
    haystacks["log"] = caplog.text.encode()
    markers = [*MARKERS.values(), MANIFEST_PATIENT_MARKER, "Markername"]
    found = [(where, marker) for where, data in haystacks.items() for marker in markers if marker.encode() in data or marker.upper().encode() in data]
    assert found == []
    # The check can fail: the markers are really in the source files.
    assert MARKERS["PatientID"].encode() in rows[0].mammogram_path.read_bytes()
    assert MANIFEST_PATIENT_MARKER.encode() in manifest.read_bytes()
