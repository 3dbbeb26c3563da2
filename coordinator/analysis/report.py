"""`fedzo report DIR`: a Markdown report, with PNG plots, of an experiment's runs.

It reads every run folder below DIR (summary.json + metrics.jsonl), groups
the runs that differ only by seed into a series, and reports the true return
against trajectories, comparisons (human queries), rounds and bytes on the
wire, as the mean and its 95 % t-interval over seeds. Plots need matplotlib
(the optional `plots` extra); without it the report has its tables only.
"""
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from fedzo.coordinator.run.folder import CONFIG, METRICS, SUMMARY
from fedzo.edge.tasks.plugins import file_label

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]

X_AXES = {
    "episodes": "trajectories (episodes, all agents)",
    "comparisons": "comparisons (human queries, all agents)",
    "rounds": "rounds",
    "bytes": "bytes on the wire (frames, all links, up + down)",
}


def mean_ci(values) -> tuple:
    """(mean, half-width of the 95 % t-interval); the half-width is 0 for one value."""
    values = np.asarray([v for v in values if v is not None], float)
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(t95(values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))


def t95(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with df degrees of freedom (df > 30: that
    of 30, a little wide)."""
    return _T95[min(df, len(_T95)) - 1]


def load_run(folder) -> dict:
    """One finished run folder as load_runs gives it, or None if it is incomplete."""
    folder = Path(folder)
    paths = [folder / name for name in (SUMMARY, METRICS, CONFIG)]
    if not all(p.exists() for p in paths):
        return None
    return {"folder": folder, "summary": json.loads(paths[0].read_text()),
            "config": json.loads(paths[2].read_text()),
            "metrics": [json.loads(l) for l in paths[1].read_text().splitlines() if l.strip()]}


def plot_run(folder) -> list:
    """The return curves of one run, as PNGs in its folder (none without matplotlib)."""
    run = load_run(folder)
    if run is None:
        return []
    s = run["summary"]
    return plot_series({f"{s['algo']} K={s['agents']}": [run]}, Path(folder), "run", s["task"])


def load_runs(root) -> list:
    """Every finished run below root: dicts with folder, summary, metrics, config."""
    found = (load_run(p.parent) for p in sorted(Path(root).rglob(SUMMARY)))
    return [run for run in found if run is not None]


def series_key(run, root) -> str:
    """The run's folder relative to root, without its seed-N part."""
    rel = run["folder"].relative_to(root)
    return "/".join(p for p in rel.parts if not p.startswith("seed-"))


def curve(run) -> dict:
    """The run's evaluated returns with the x-values of every axis (the start included)."""
    points = {"return": [run["summary"]["return_initial"]], "episodes": [0], "comparisons": [0],
              "rounds": [0], "bytes": [0]}
    total_bytes = 0
    for m in run["metrics"]:
        total_bytes += m.get("bytes_up", 0) + m.get("bytes_down", 0)
        if m.get("return") is None:
            continue
        points["return"].append(m["return"])
        points["episodes"].append(m["episodes"])
        points["comparisons"].append(m["comparisons"])
        points["rounds"].append(m["round"] + 1)
        points["bytes"].append(total_bytes)
    return points


def group_series(runs, root) -> dict:
    """series name -> list of runs (one per seed)."""
    groups = defaultdict(list)
    for run in runs:
        groups[series_key(run, root)].append(run)
    return dict(sorted(groups.items()))


def series_curve(runs) -> dict:
    """Mean and CI of the return at each evaluation point, with mean x-values."""
    curves = [curve(r) for r in runs]
    n = min(len(c["return"]) for c in curves)
    out = {axis: [float(np.mean([c[axis][i] for c in curves])) for i in range(n)] for axis in X_AXES}
    stats = [mean_ci([c["return"][i] for c in curves]) for i in range(n)]
    out["mean"] = [m for m, _ in stats]
    out["ci"] = [h for _, h in stats]
    return out


def series_table_row(name, runs) -> dict:
    """Summary figures of one series, over its seeds."""
    s = [r["summary"] for r in runs]
    start = mean_ci([x["return_initial"] for x in s])
    final = mean_ci([x["return_final"] for x in s])
    gain = mean_ci([x["return_final"] - x["return_initial"] for x in s])
    first = s[0]
    per_agent = [a for x in s for a in x["per_agent"]]
    peak = [a["peak_rss_bytes"] for a in per_agent if a.get("peak_rss_bytes")]
    state = [a["learning_state_bytes"] for a in per_agent if a.get("learning_state_bytes")]
    return {
        "series": name, "seeds": len(runs), "algo": first["algo"], "task": first["task"],
        "agents": first["agents"], "rounds": first["rounds"], "episodes": first["episodes"],
        "comparisons": first["comparisons"], "return_initial": start, "return_final": final, "gain": gain,
        "train_horizon": runs[0]["config"].get("horizon", 1000),
        # When the run trained at a shorter horizon: its gain there too (the truncated objective).
        "gain_train_horizon": mean_ci([x["return_final_train_horizon"] - x["return_initial_train_horizon"]
                                       for x in s if "return_final_train_horizon" in x]),
        # Runs from before full-horizon evaluation were evaluated at their training horizon.
        "eval_horizon": first.get("eval_horizon") or runs[0]["config"].get("horizon", 1000),
        "bytes_per_agent_round_up": float(np.mean([x["bytes_per_agent_per_round_up"] for x in s])),
        "bytes_per_agent_round_down": float(np.mean([x["bytes_per_agent_per_round_down"] for x in s])),
        "peak_rss_mib": float(np.max(peak)) / 2**20 if peak else None,
        "learning_state_bytes": int(np.max(state)) if state else None,
    }


def _fmt(stat, digits=1) -> str:
    mean, half = stat
    return "-" if math.isnan(mean) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def markdown_table(rows) -> str:
    """The series table as Markdown."""
    columns = ["series", "seeds", "K", "rounds", "episodes", "comparisons", "train / eval horizon",
               "return at start",
               "return at end", "gain (95 % CI)", "B/agent/round up", "B/agent/round down",
               "peak RSS MiB", "learning state B"]
    truncated = any(not math.isnan(r["gain_train_horizon"][0]) for r in rows)
    if truncated:
        columns.insert(columns.index("gain (95 % CI)") + 1, "gain at the training horizon")
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        peak = "-" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.1f}"
        cells = [r["series"], r["seeds"], r["agents"], r["rounds"], r["episodes"], r["comparisons"],
                 f"{r['train_horizon']} / {r['eval_horizon']}",
                 _fmt(r["return_initial"]), _fmt(r["return_final"]), _fmt(r["gain"]),
                 f"{r['bytes_per_agent_round_up']:.1f}", f"{r['bytes_per_agent_round_down']:.1f}",
                 peak, r["learning_state_bytes"] or "-"]
        if truncated:
            cells.insert(columns.index("gain at the training horizon"), _fmt(r["gain_train_horizon"]))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def plot_series(groups: dict, out_dir: Path, title: str, task: str) -> list:
    """One PNG per x-axis: mean return and its 95 % interval for every series.

    Returns the written files; none if matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for axis, label in X_AXES.items():
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        for name, runs in groups.items():
            c = series_curve(runs)
            x, mean, ci = np.array(c[axis]), np.array(c["mean"]), np.array(c["ci"])
            series_label = name.replace(f"/task={task}", "")   # the title names the task already
            line, = ax.plot(x, mean, marker="o", markersize=3, label=f"{series_label} (n={len(runs)})")
            ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.2)
        ax.set_xlabel(label)
        ax.set_ylabel("true return (mean over evaluation episodes)")
        several = any(len(runs) > 1 for runs in groups.values())
        note = "mean and 95 % interval over seeds" if several else "one run"
        ax.set_title(f"{task}: true return vs {axis}\n({note})", fontsize=10)
        if axis == "bytes":
            # Byte counts span decades (a vote vs a float32 model): symlog keeps the start at 0.
            ax.set_xscale("symlog", linthresh=1e3)
            top = max(max(series_curve(rs)["bytes"]) for rs in groups.values())
            ax.set_xticks([0] + [10 ** k for k in range(3, int(np.log10(max(top, 1e3))) + 2)])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out_dir / f"{slug_name(title)}-{file_label(task)}-return-vs-{axis}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def slug_name(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()


def write_report(root, out_path=None, title=None) -> Path:
    """Write REPORT.md (and PNG plots) for the runs below root; returns its path."""
    from fedzo.coordinator.analysis import null_control, options  # they build on this module
    root = Path(root)
    runs = load_runs(root)
    if not runs:
        raise FileNotFoundError(f"no finished runs (summary.json) below {root}")
    out_path = Path(out_path) if out_path else root / "REPORT.md"
    plot_dir = out_path.parent
    plot_dir.mkdir(parents=True, exist_ok=True)
    title = title or root.name
    ref = options.reference(runs)     # one reference setting for every table and the claims
    by_task = defaultdict(list)
    for run in runs:
        by_task[run["summary"]["task"]].append(run)
    parts = [f"# {title}", "",
             f"{len(runs)} runs below `{root}`; each series is the mean over its seeds with a "
             f"95 % t-interval. Returns are true returns over fixed evaluation episodes at the "
             f"evaluation horizon the tables name (the task's own time limit unless marked). "
             f"Bytes are protocol frames (framing, header and tag included; "
             f"TCP/IP headers excluded).", ""]
    for task, task_runs in sorted(by_task.items()):
        groups = group_series(task_runs, root)
        rows = [series_table_row(name, rs) for name, rs in groups.items()]
        parts += [f"## {task}", "", markdown_table(rows), ""]
        tables = (null_control.markdown(task_runs, lambda run: series_key(run, root)),
                  options.markdown(task_runs, lambda run: series_key(run, root), ref))
        parts += [table for table in tables if table]      # each is '' where it has no rows
        for png in plot_series(groups, plot_dir, title, task):
            parts += [f"![{png.stem}]({png.name})", ""]
    from fedzo.coordinator.analysis.claims import claims_markdown
    parts.append(claims_markdown(runs, lambda run: series_key(run, root), ref))
    out_path.write_text("\n".join(parts))
    return out_path
