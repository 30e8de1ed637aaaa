"""`dpsynth scan`: exit codes, JSON, masked output, one-line errors."""

import json

from dpsynth.cli import main


def test_scan_cli(planted, tmp_path, capsys):
    path = tmp_path / "synthetic.csv"
    planted.to_csv(path, index=False)
    assert main(["scan", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["found"] and report["ner"]["enabled"]
    for column in ("email", "ssn", "credit_card", "iban"):
        for value in planted[column]:
            assert value not in captured.out
    assert main(["scan", str(path)]) == 1
    text = capsys.readouterr().out
    assert "EMAIL_ADDRESS" in text and "PII found in" in text
    assert not any(v in text for v in planted["email"])
    clean = tmp_path / "clean.csv"
    planted[["amount", "category"]].to_csv(clean, index=False)
    assert main(["scan", str(clean)]) == 0
    assert "no PII found" in capsys.readouterr().out


def test_scan_cli_bad_input(planted, tmp_path, capsys):
    path = tmp_path / "t.csv"
    planted.to_csv(path, index=False)
    cases = [
        (["scan", str(tmp_path / "missing.csv")], "does not exist"),
        (["scan", str(path), "--entities", "EMAIL_ADDRESS", "SOCIAL"], "unknown entity type(s) 'SOCIAL'"),
        (["scan", str(path), "--threshold", "2"], "threshold (2.0) must be a number in [0, 1]"),
    ]
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_bytes(b"\xff\xfe\x00a,b\n\x00\xff")
    cases.append((["scan", str(bad_csv)], "cannot be read"))
    schema = tmp_path / "s.yaml"
    schema.write_text("columns:\n  - {name: amount, kind: integer, bounds: [0, 10]}\n  - {name: email, kind: integer, "
                      "bounds: [0, 10]}\n")
    cases.append((["scan", str(path), "--schema", str(schema)], "column 'email' is declared integer"))
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.strip().count("\n") == 0, (args, err)
