"""The benchmark's figures as a table for people; the JSON line is for machines."""


def bench_table(figures: dict) -> list[str]:
    """The figures as a table for people; the JSON line is for machines."""
    rows = [
        ("leads", f"{figures['leads']:,}"),
        ("workers", figures["workers"]),
        ("end to end", f"{figures['seconds']:.2f} s"),
        ("leads per second", f"{figures['leads_per_s']:,}"),
        ("floor", f"{figures['floor_seconds']:.2f} s"),
        ("ratio to floor", f"{figures['ratio_to_floor']:.2f}x"),
        ("launch answered in", f"{figures['launch_seconds']:.3f} s"),
    ]
    rows += [
        (f"  {name} at", "-" if at is None else f"{at:.2f} s")
        for name, at in figures["stages"].items()
    ]
    rows += [
        (
            "CPU: workers / database",
            f"{figures['worker_cpu_seconds']} s / {figures['database_cpu_seconds']} s",
        ),
        ("celery tasks", f"{figures['tasks']:,}"),
        ("SQL per 1,000 leads", f"{figures['sql_per_1000_leads']:,}"),
        (
            "peak RSS per worker",
            ", ".join(f"{mb} MB" for mb in figures["worker_peak_rss_mb"]),
        ),
        ("sent / delivered", f"{figures['sent']:,} / {figures['delivered']:,}"),
        ("failed / skipped", f"{figures['failed']:,} / {figures['skipped']:,}"),
        ("deferred / capped", f"{figures['deferred']:,} / {figures['capped']:,}"),
    ]
    for name, count in sorted(figures["tasks_by_name"].items()):
        rows.append(
            (
                f"  {name}",
                f"{count:,} tasks, {figures['sql_by_task'].get(name, 0):,} SQL, "
                f"{figures['task_seconds_by_name'].get(name, 0):.1f} s "
                f"({figures['task_cpu_seconds_by_name'].get(name, 0):.1f} s CPU)",
            )
        )
    rows.append(("segment preview, slowest", f"{figures['max_preview_seconds']} s"))
    rows += [(f"  {name}", f"{s} s") for name, s in figures["preview_seconds"].items()]
    if "import" in figures:
        done = figures["import"]
        rows += [
            ("CSV import", f"{done['rows']:,} rows"),
            ("  new leads", f"{done['new_seconds']} s, {done['new_rows_per_s']:,}/s"),
            (
                "  again (updates)",
                f"{done['update_seconds']} s, {done['update_rows_per_s']:,}/s",
            ),
        ]
    return [f"  {name:<30}{value}" for name, value in rows]
