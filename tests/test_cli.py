"""The ``bsrnn-tf`` command line, called as ``main(argv)``."""

import json

import pytest

from bsrnn_tf import bands
from bsrnn_tf.cli import main


def test_bands_list(capsys):
    assert main(["bands", "list"]) == 0
    out = capsys.readouterr().out
    for name, count in [("v7", 41), ("bass", 30), ("drums", 55), ("universal", 87)]:
        assert any(line.split()[:2] == [name, str(count)] for line in out.splitlines()
                   if line.strip()), out


@pytest.mark.parametrize("args,schema,kwargs", [
    (["v7"], "v7", {}),
    (["universal", "--num-edges", "41"], "universal", {"num_edges": 41}),
    (["drums", "--sample-rate", "22050", "--n-fft", "1024"], "drums",
     {"sample_rate": 22050, "n_fft": 1024}),
])
def test_bands_show_json(capsys, args, schema, kwargs):
    assert main(["bands", "show", *args, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == [list(r) for r in bands.band_ranges(schema, **kwargs)]


def test_bands_plot_writes_png(tmp_path, capsys):
    out = tmp_path / "u.png"
    assert main(["bands", "plot", "universal", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_bands_bad_schema_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[300, 200]")
    assert main(["bands", "show", str(bad), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.json" in err and "strictly increasing" in err
    assert len(err.splitlines()) == 1


def test_info_counts_parameters(capsys):
    assert main(["info", "tiny"]) == 0
    one = capsys.readouterr().out
    assert main(["info", "tiny", "--targets", "drums", "bass"]) == 0
    two = capsys.readouterr().out
    count = lambda text: int(text.strip().splitlines()[-1].split()[0])  # noqa: E731
    head = int(one.split("each head: ")[1].split()[0])
    assert count(two) == count(one) + head
    assert one.strip().splitlines()[-1].endswith(" parameters")


def test_info_unknown_preset(capsys):
    assert main(["info", "huge"]) == 2
    assert "unknown preset" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["bands", "list"], ["separate", "song.wav"]])
def test_ctrl_c_while_tensorflow_starts_is_one_line(monkeypatch, capsys, argv):
    import bsrnn_tf.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "quiet_tensorflow", interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == f"bsrnn-tf {argv[0]}: interrupted\n"
