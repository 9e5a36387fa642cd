"""`dmp-dev bench` regenerates the tables of BENCHMARKS.md and keeps what is written by hand."""

from __future__ import annotations

from dev.bench import HAND_WRITTEN, with_hand_written


def test_a_new_run_keeps_the_hand_written_part(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    hand = "\n\n## Reading the run of 2026-11-30\n\nIdentity is bound by its rewrites.\n"
    out.write_text("# Benchmarks\n\n| old | table |\n\n" + HAND_WRITTEN + hand)
    text = with_hand_written("# Benchmarks\n\n| new | table |\n", str(out))
    assert text == "# Benchmarks\n\n| new | table |\n\n" + HAND_WRITTEN + hand
    assert "old" not in text


def test_a_first_run_or_a_file_without_the_marker_gets_the_marker(tmp_path):
    missing = tmp_path / "none.md"
    assert with_hand_written("# B\n", str(missing)) == "# B\n\n" + HAND_WRITTEN + "\n"
    plain = tmp_path / "plain.md"
    plain.write_text("# an old generated file\n")
    assert with_hand_written("# B\n", str(plain)) == "# B\n\n" + HAND_WRITTEN + "\n"
