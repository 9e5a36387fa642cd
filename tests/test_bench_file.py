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


def test_the_history_section_is_replaced_between_its_markers_and_survives_the_bench(tmp_path):
    from dev.history_bench import BEGIN, END, write_section

    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n" + HAND_WRITTEN + "\n\n## By hand\n")
    write_section(f"{BEGIN}\nfirst\n{END}\n", str(out))
    write_section(f"{BEGIN}\nsecond\n{END}\n", str(out))
    text = out.read_text()
    assert text == f"# Benchmarks\n\n{HAND_WRITTEN}\n\n## By hand\n\n{BEGIN}\nsecond\n{END}\n"
    assert with_hand_written("# New tables\n", str(out)).endswith(f"{BEGIN}\nsecond\n{END}\n")


def test_holding_out_days_moves_exactly_the_later_event_folders_and_back(tmp_path):
    from dev.landing import bring_back_until, hold_out_after

    raw = tmp_path / "raw"
    for source in ("web", "app"):
        for d in ("2026-11-01", "2026-11-02", "2026-11-03"):
            (raw / source / f"dt={d}").mkdir(parents=True)
            (raw / source / f"dt={d}" / "part.jsonl").write_text(d)
    (raw / "crm" / "dt=2026-11-03").mkdir(parents=True)
    aside = hold_out_after(str(raw), "2026-11-01", ["web", "app"])
    assert sorted(p.name for p in (raw / "web").iterdir()) == ["dt=2026-11-01"]
    assert (raw / "crm" / "dt=2026-11-03").is_dir()  # the customer export stays
    bring_back_until(str(raw), aside, "2026-11-02")
    assert sorted(p.name for p in (raw / "app").iterdir()) == ["dt=2026-11-01", "dt=2026-11-02"]
    bring_back_until(str(raw), aside, "9999")
    assert (raw / "web" / "dt=2026-11-03" / "part.jsonl").read_text() == "2026-11-03"


def test_the_history_table_divides_by_the_shortest_history_and_the_cold_run():
    from dev.history_bench import history_markdown

    def run(total, lines=100):
        return {"total_s": total, "stages": {"ingest": total / 2}, "events": 90, "lines": lines}

    results = [
        {"history": 14, "daily": run(100.0)},
        {"history": 90, "daily": run(150.0)},
    ]
    readers = {"spark_text_s": 2.0, "spark_json_s": 4.0, "duckdb_json_s": 1.0, "lines": 9000}
    cold = {**run(600.0, 9000), "readers": readers}
    text = history_markdown(1000, {"events": 91000}, results, cold)
    assert "| 14 | 100s | 1.00 | 0.17 |" in text  # 100 / 600
    assert "| 90 | 150s | 1.50 | 0.25 |" in text
    assert "| Spark `text`, every line | 2.0s | 150.0 |" in text  # cold ingest 300 s / 2 s
    assert "| DuckDB `read_json`, every native field as text, 2 threads | 1.0s | 300.0 |" in text
