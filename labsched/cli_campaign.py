"""``labsched campaign new | ask | tell | fail | status | log | report | simulate``.

Every subcommand takes the journal file first; each call is one committed journal transaction,
so the commands can be run from scripts, cron jobs or by hand, in any number of processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from labsched.agents.campaign import Campaign, run_simulation, simulate
from labsched.envs.labs.durations import parse_duration
from labsched.envs.labs.spec import LabSpec

__all__ = ["add_campaign_parser", "run_campaign"]


def _parse_bounds(text: str) -> list[tuple[float, float]]:
    """``"0:1,0:1"`` -> ``[(0, 1), (0, 1)]``."""
    try:
        pairs = [part.split(":") for part in text.split(",")]
        return [(float(a), float(b)) for a, b in pairs]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bounds must look like 0:1,0:1 (low:high per input), got {text!r}"
        ) from None


def _add_spec(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem spec (time in the campaign's unit)")
    g.add_argument("-n", "--n-experiments", type=int, default=20, help="budget of experiments")
    g.add_argument("-l", "--n-labs", type=int, default=4, help="labs (benches, job slots) running at once")
    g.add_argument("--horizon", type=float, default=10.0, help="deadline")
    g.add_argument(
        "--duration", type=parse_duration, default=None, help="duration law, e.g. truncnorm:1,0.316"
    )
    g.add_argument("--p-safe", type=float, default=0.95, help="safety probability p")
    g.add_argument("--epoch", type=float, default=0.1, help="decision interval")


def _add_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default="ps", help="baseline name or saved agent path (default ps)")
    p.add_argument("--selector", default="kb-ei", help="selector name (default kb-ei)")
    p.add_argument("--goal", default="optimize", choices=["optimize", "learn"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-std", type=float, default=0.0, help="observation noise sd")
    p.add_argument(
        "--stop-sd", type=float, default=None, help="stop when the sd at the recommendation is below"
    )
    p.add_argument("--stop-gain", type=float, default=None, help="stop when the next batch's gain is below")


def _spec(args: argparse.Namespace) -> LabSpec:
    kw: dict[str, Any] = dict(
        n_experiments=args.n_experiments,
        n_labs=args.n_labs,
        horizon=args.horizon,
        p_safe=args.p_safe,
        epoch=args.epoch,
    )
    if args.duration is not None:
        kw["duration"] = args.duration
    return LabSpec(**kw)


def _stop(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    if args.stop_sd is not None:
        out["sd_at_best"] = args.stop_sd
    if args.stop_gain is not None:
        out["batch_gain"] = args.stop_gain
    return out


def add_campaign_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``campaign`` and its subcommands on ``labsched``'s subparsers."""
    top = subparsers.add_parser("campaign", help="run a real campaign: ask/tell planner with a journal")
    sub = top.add_subparsers(dest="campaign_command", required=True)
    p = sub.add_parser("new", help="create a campaign journal")
    p.add_argument("journal")
    p.add_argument("--bounds", type=_parse_bounds, required=True, help="low:high per input, e.g. 0:1,0:1")
    _add_spec(p)
    _add_choice(p)
    p = sub.add_parser("ask", help="experiments to start now (JSON, one order per line)")
    p.add_argument("journal")
    p.add_argument("--now", type=float, required=True)
    for name, helptext in (("tell", "record a result"), ("fail", "record a failed run")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("journal")
        p.add_argument("id", type=int)
        if name == "tell":
            p.add_argument("--y", type=float, required=True)
        p.add_argument("--at", type=float, required=True, help="finish time")
    p = sub.add_parser("status", help="counts, recommendation, thresholds, next ask time")
    p.add_argument("journal")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("log", help="print the decision log (rationale of every ask)")
    p.add_argument("journal")
    p.add_argument("--jsonl", type=Path, default=None, help="also write it as JSON Lines")
    p.add_argument("--all", action="store_true", help="include asks that started nothing")
    p = sub.add_parser("report", help="write the HTML dashboard")
    p.add_argument("journal")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    p = sub.add_parser("simulate", help="run (or resume) a campaign against a simulated lab")
    p.add_argument("journal")
    p.add_argument("--objective", default="cosines", help="registered objective (its box is the bounds)")
    p.add_argument("--n-initial", type=int, default=None)
    _add_spec(p)
    _add_choice(p)
    p.add_argument("-o", "--report", type=Path, default=None, help="also write the dashboard")
    top.set_defaults(func=run_campaign)
    return top


def _print_log(c: Campaign, show_all: bool) -> None:
    for d in c.decisions():
        view = d.get("scheduler_view", {})
        if not (show_all or d["orders"] or "policies" in view):
            continue
        print(f"decision {d['decision']} at t={d['time']:.6g}: start {len(d['orders'])} {d['orders']}")
        if "policies" in view:
            est = ", ".join(
                f"{k}={v:.3f}" if v is not None else f"{k}=-" for k, v in view["policies"].items()
            )
            print(f"  scheduler {d['scheduler']}: chose {view.get('chosen_policy')} among {est}")
        elif view.get("note"):
            print(f"  scheduler {d['scheduler']}: {view['note']}")
        for ch in d.get("chosen", []):
            value = ch.get("value")
            value = float("nan") if value is None else value
            print(f"  input {ch['x']}: mean {ch['mean']:.4g} sd {ch['sd']:.4g} value {value:.4g}")
        for cand in d.get("top_candidates", [])[:3]:
            print(f"  candidate {cand['x']}: {cand['value']:.4g}")
        gp = d.get("gp", {})
        print(f"  gp: {gp}  seed {d['seed']}  {d['code_version']}")


def run_campaign(args: argparse.Namespace) -> int:
    """Run one ``labsched campaign`` subcommand."""
    cmd = args.campaign_command
    if cmd == "new":
        c = Campaign.create(
            args.journal,
            spec=_spec(args),
            bounds=args.bounds,
            scheduler=args.scheduler,
            selector=args.selector,
            goal=args.goal,
            seed=args.seed,
            noise_std=args.noise_std,
            stop_when=_stop(args),
        )
        print(f"created {args.journal}: next ask at t={c.next_ask_time()}")
        return 0
    if cmd == "simulate":
        if Path(args.journal).exists():
            c = run_simulation(Campaign.open(args.journal))
        else:
            c = simulate(
                args.journal,
                objective=args.objective,
                spec=_spec(args),
                scheduler=args.scheduler,
                selector=args.selector,
                seed=args.seed,
                goal=args.goal,
                noise_std=args.noise_std,
                n_initial=args.n_initial,
                stop_when=_stop(args),
            )
        print(json.dumps(c.status().to_json(), indent=1))
        if args.report is not None:
            print(f"wrote {c.report(args.report)}", file=sys.stderr)
        return 0
    c = Campaign.open(args.journal)
    if cmd == "ask":
        for o in c.ask(args.now):
            print(json.dumps(o.to_json()))
        print(f"next ask at t={c.next_ask_time()}", file=sys.stderr)
    elif cmd == "tell":
        print(json.dumps(c.tell(args.id, args.y, finished_at=args.at).to_json()))
    elif cmd == "fail":
        print(json.dumps(c.fail(args.id, finished_at=args.at).to_json()))
    elif cmd == "status":
        s = c.status().to_json()
        print(json.dumps(s, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in s.items()))
    elif cmd == "log":
        _print_log(c, args.all)
        if args.jsonl is not None:
            print(f"wrote {c.export_jsonl(args.jsonl)}", file=sys.stderr)
    elif cmd == "report":
        print(f"wrote {c.report(args.output)}")
    return 0
