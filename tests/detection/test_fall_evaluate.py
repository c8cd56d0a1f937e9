"""``eldergate evaluate fall DIR --out FILE`` (contract 1) on a small directory of real
recordings (tests/fixtures/fall, sources in its README)."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest

from gateway.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fall"


def _run(capsys, *args: str) -> tuple[int, dict]:
    code = main(["evaluate", "fall", *args])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1])


def test_evaluate_streams_every_recording_and_reports_the_contract(tmp_path, capsys) -> None:
    out = tmp_path / "result.csv"
    code, summary = _run(capsys, str(FIXTURES), "--out", str(out))
    assert code == 0
    with (FIXTURES / "MANIFEST.csv").open() as fh:
        manifest = list(csv.DictReader(fh))
    falls = sum(r["label"] == "fall" for r in manifest)
    assert summary["recordings"] == len(manifest)
    assert summary["falls"] == falls and summary["adls"] == len(manifest) - falls
    assert summary["tp"] + summary["fn"] == falls
    assert summary["fp"] + summary["tn"] == len(manifest) - falls
    assert summary["sensitivity"] == pytest.approx(summary["tp"] / falls, abs=1e-4)
    # these real falls are clear ones and these daily activities are not falls
    assert summary["tp"] == falls and summary["fp"] == 0
    assert set(summary["datasets"]) == {r["dataset"] for r in manifest}
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "label", "detected", "detected_at_s"]
    assert [r["file"] for r in rows] == [r["file"] for r in manifest]
    for row in rows:
        assert (row["detected"] == "1") == (row["detected_at_s"] != "")
        if row["detected"] == "1":
            assert 0.0 < float(row["detected_at_s"]) <= 30.0


def test_detection_time_is_the_confirmation_window_after_the_impact(tmp_path, capsys) -> None:
    import numpy as np

    from gateway.commands.evaluate import read_recording
    from gateway.detection import fall
    from gateway.detection.fall_alerts import FallSettings

    out = tmp_path / "result.csv"
    _run(capsys, str(FIXTURES), "--out", str(out))
    confirmation = FallSettings().confirmation_s
    with out.open() as fh:
        for row in csv.DictReader(fh):
            if row["detected"] != "1":
                continue
            t, xyz = read_recording(FIXTURES / row["file"])
            impacts = [
                i / fall.GRID_HZ
                for i, _ in fall.recording_candidates(fall.resample_recording(t - t[0], xyz))
            ]
            latencies = float(row["detected_at_s"]) - np.array(impacts)
            assert np.any((latencies >= confirmation - 0.05) & (latencies <= confirmation + 0.2))


def test_plain_csv_unreadable_files_and_missing_columns(tmp_path, capsys) -> None:
    shutil.copy(FIXTURES / "U01_F02_R01.csv.gz", tmp_path / "fall.csv.gz")
    with gzip.open(FIXTURES / "U01_D01_R01.csv.gz", "rt") as fh:
        (tmp_path / "walk.csv").write_text(fh.read())
    (tmp_path / "broken.csv").write_text("t,x,y,z\n0.0,zero,1,2\n")
    (tmp_path / "MANIFEST.csv").write_text(
        "file,label\nfall.csv.gz,fall\nwalk.csv,adl\nbroken.csv,adl\nmissing.csv,fall\n"
    )
    out = tmp_path / "r.csv"
    code, summary = _run(capsys, str(tmp_path), "--out", str(out))
    assert code == 0
    assert summary["recordings"] == 4 and summary["errors"] == 2
    assert "datasets" not in summary
    assert summary["tp"] == 1 and summary["tn"] == 2  # unreadable files count as not detected

    (tmp_path / "MANIFEST.csv").write_text("name,kind\nfall.csv.gz,fall\n")
    assert main(["evaluate", "fall", str(tmp_path)]) == 2
    assert main(["evaluate", "fall", str(tmp_path / "nowhere")]) == 2


def _write_csv(path: Path, t, xyz) -> None:
    import numpy as np

    np.savetxt(
        path, np.column_stack([t, xyz]), delimiter=",", header="t,x,y,z", comments="", fmt="%.6f"
    )


def test_detected_at_is_on_the_recordings_own_time_axis(tmp_path, capsys) -> None:
    """Contract 1: ``detected_at_s`` is the time *in the recording*, i.e. on its ``t`` axis,
    which need not start at 0 (a clip cut from a longer stream, epoch seconds)."""
    from gateway.commands.evaluate import read_recording

    t, xyz = read_recording(FIXTURES / "U01_F02_R01.csv.gz")
    offsets = {"zero.csv": 0.0, "later.csv": 1000.0, "epoch.csv": 1_700_000_000.0}
    for name, offset in offsets.items():
        _write_csv(tmp_path / name, t + offset, xyz)
    (tmp_path / "MANIFEST.csv").write_text(
        "file,label\n" + "".join(f"{name},fall\n" for name in offsets)
    )
    out = tmp_path / "r.csv"
    code, summary = _run(capsys, str(tmp_path), "--out", str(out))
    assert code == 0 and summary["tp"] == 3
    with out.open() as fh:
        at = {r["file"]: float(r["detected_at_s"]) for r in csv.DictReader(fh)}
    for name, offset in offsets.items():
        assert at[name] == pytest.approx(at["zero.csv"] + offset, abs=0.02)


def test_manifest_with_a_bom_and_recordings_gzipped_or_not_whatever_their_name(
    tmp_path, capsys
) -> None:
    """Contract 1: "gzip or plain CSV", columns ``file`` and ``label``. A spreadsheet's
    "CSV UTF-8" export starts with a byte-order mark and ends lines with CRLF; a recording's
    name does not have to say whether it is compressed."""
    with gzip.open(FIXTURES / "U01_F02_R01.csv.gz", "rt") as fh:
        text = fh.read()
    (tmp_path / "plain.csv.gz").write_text(text)  # plain, though named .gz
    with gzip.open(tmp_path / "packed.csv", "wt") as fh:  # gzip, though named .csv
        fh.write(text)
    (tmp_path / "MANIFEST.csv").write_bytes(
        b"\xef\xbb\xbfsubject,label,file\r\nU01,fall,plain.csv.gz\r\nU01,fall,packed.csv\r\n"
    )
    code, summary = _run(capsys, str(tmp_path))
    assert code == 0
    assert summary["recordings"] == 2 and summary["errors"] == 0 and summary["tp"] == 2


def test_recordings_with_gaps_in_their_values_a_header_in_another_order_or_none(
    tmp_path, capsys
) -> None:
    """Contract 1: a recording is CSV ``t,x,y,z``. A value missing from a row (``1.0,,0.2,1``,
    a sensor's gap), a row that is not numbers, a first row without a time, a header naming
    the columns in another order beside others, or no header at all: the recording is still
    streamed, the gaps as NaN as the live detector sees them. Before, one empty field made the
    whole recording unreadable (a missed fall), a NaN first time made every time NaN (nothing
    detected, no error), and a reordered header was read as ``t,x,y,z``."""
    from gateway.commands.evaluate import read_recording

    t, xyz = read_recording(FIXTURES / "U01_F02_R01.csv.gz")
    rows = [f"{a:.4f},{x:.4f},{y:.4f},{z:.4f}" for a, (x, y, z) in zip(t, xyz, strict=True)]
    header = "t,x,y,z"
    variants = {
        "clean.csv": [header, *rows],
        "blank.csv": [header, *rows[:40], "1.0,,0.2", *rows[40:], ",,,"],
        "text.csv": [header, *rows[:40], "n/a,x,y,z", *rows[40:]],
        "nan_first.csv": [header, "nan,0,0,1", *rows],
        "no_header.csv": rows,
        "other_names.csv": ["time,ax,ay,az", *rows],  # read by position, as always
        "quoted.csv": [
            '"t","x","y","z"',
            *(",".join(f'"{v}"' for v in r.split(",")) for r in rows),
        ],
        "reordered.csv": [
            "z,mag,t,y,x",
            *(
                f"{r.split(',')[3]},1,{r.split(',')[0]},{r.split(',')[2]},{r.split(',')[1]}"
                for r in rows
            ),
        ],
    }
    for name, lines_ in variants.items():
        (tmp_path / name).write_text("\n".join(lines_) + "\n")
    (tmp_path / "MANIFEST.csv").write_text(
        "file,label\n" + "".join(f"{name},fall\n" for name in variants)
    )
    out = tmp_path / "r.csv"
    code, summary = _run(capsys, str(tmp_path), "--out", str(out))
    assert code == 0 and summary["errors"] == 0 and summary["tp"] == len(variants), summary
    with out.open() as fh:
        at = {r["file"]: float(r["detected_at_s"]) for r in csv.DictReader(fh)}
    for name in variants:
        assert at[name] == pytest.approx(at["clean.csv"], abs=0.05), (name, at)
    t2, _xyz = read_recording(tmp_path / "no_header.csv")
    assert t2.size == t.size  # no header: the first row is a sample, not skipped


def test_manifest_header_written_by_hand(tmp_path, capsys) -> None:
    """Contract 1: columns ``file`` and ``label`` at least; "File, Label" is the same."""
    shutil.copy(FIXTURES / "U01_F02_R01.csv.gz", tmp_path / "fall.csv.gz")
    (tmp_path / "MANIFEST.csv").write_text("File, Label\nfall.csv.gz,fall\n")
    code, summary = _run(capsys, str(tmp_path))
    assert code == 0 and summary["recordings"] == 1 and summary["tp"] == 1
