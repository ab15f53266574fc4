"""``gspc``: a thin front over pytest and the plugin, plus certification, run diffs and merges.

Exit codes: 0 conformant (warnings allowed), 1 non-conformant (``diff``: a new failure;
``verify``: a mismatch), 2 usage or configuration error, 3 incomplete (a case did not end by
itself, was never run, or a target could not run), 4 no case selected.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from conformance import outputs, scaffold
from conformance.backends import known as known_backends
from conformance.driver import Capabilities, DriverError
from conformance.engine.cleanup import Option, clean_run
from conformance.engine.interrupts import CaseTimeout, deadline
from conformance.engine.payloads import SizeError, parse_size
from conformance.explore.results import SHRINK_SECONDS
from conformance.inventory import bundled_targets, describe_target
from conformance.naming import suggest
from conformance.records import PROBLEMS, load_run, new_run_id, records_path
from conformance.redact import Redactor, scrub_tree
from conformance.report import badge, certificate, diff
from conformance.report.merge import merge_runs
from conformance.report.summary import finalize
from conformance.report.terminal import behaviour_lines, counts, matrix, printable
from conformance.run import RunError, parse_targets
from conformance.spec.limits import DEFAULT_LIMITS, SpecLimits
from conformance.spec.loader import SpecError, bundled_specs_dir, load_specs, schema_checked, spec_files
from conformance.spec.model import LEVELS, Spec
from conformance.supervise import Ending, supervise
from conformance.targets import (
    EXEC,
    SharedBackends,
    Target,
    TargetUnavailable,
    backend_of,
    default_targets,
    driver_names,
    load_driver_class,
    open_target,
)
from conformance.waivers import check_waivers, run_waivers

USAGE = 2
INCOMPLETE = 3
NO_CASE = 4
ENDPOINTS = "endpoints.json"  # the run's shared backends, for its pytest children (removed when the run ends)
STOP_WAIT = 5.0  # seconds an interrupted run waits for backends still starting before it stops those up
#: pytest's own refusals, by its exit codes (``pytest.ExitCode``: a usage error 4, an interrupted or failed
#: collection 2, an internal error 3), already explained; gspc itself never imports pytest (0.1 s of start-up)
REFUSED = (4, 2, 3)
#: The pytest plugins a run loads; add more after ``--`` (``--allure DIR`` adds allure-pytest). Not pytest's
#: unraisable-exception check: it collects garbage five times as every process ends (a worker with an SDK
#: loaded spends about 0.2 s of CPU on it), while the default hook already writes such an exception to
#: stderr, captured with the case that was running.
PLUGINS = ("-p", "conformance.plugin", "-p", "xdist.plugin", "-p", "no:unraisableexception")
ALLURE_MISSING = "--allure needs allure-pytest: python -m pip install 'gsp-conformance[allure]'"


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with gspc's one-line usage errors: ``gspc: <what> (see gspc run --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"gspc: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.getcwd() not in sys.path:  # a driver module next to you is found, as `python -m` would find it
        sys.path.insert(0, os.getcwd())
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named after the command typed, with the way to pass pytest its own arguments
        where = f"gspc {args.command}" if getattr(args, "command", None) else "gspc"
        parser.exit(USAGE, f"gspc: unrecognized arguments: {' '.join(unknown)} (see {where} --help; pytest "
                           "arguments go after --)\n")  # fmt: skip
    if not getattr(args, "command", None):
        parser.print_help()
        return USAGE
    try:
        return args.handler(args, extra)
    except SpecError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return USAGE
    except (UsageError, DriverError) as exc:
        print(f"gspc: {exc}", file=sys.stderr)
        return USAGE


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gspc", description="Run the GSP conformance specs against storage drivers.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run specs against targets and write reports",
        description="Run the GSP specs against targets and write records, summary, junit.xml and index.html. "
        "By default every spec runs against every bundled target that can run here (memory, fs, s3@moto, "
        "dropbox@emulator; see gspc drivers).",
        epilog="pytest arguments go after --, e.g. gspc run --driver mystore:MyDriver -- -k delete-missing -x",
    )
    run.add_argument(
        "--driver",
        action="append",
        default=[],
        metavar="NAME|module:Class",
        help="a driver to run on its default backend; repeatable",
    )
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="DRIVER[@BACKEND]",
        help="a target such as memory, fs, fs@/dir, s3@moto; repeatable",
    )
    run.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="ID",
        help="a spec by id (GSP-46) or name (delete); repeatable; default: all",
    )
    run.add_argument(
        "--level",
        action="append",
        default=[],
        type=_level,
        metavar="LEVEL",
        help=f"run only clauses of this level ({', '.join(LEVELS)}, any case); repeatable",
    )
    _run_options(run, out=Path("reports"))
    run.add_argument(
        "--allure", type=Path, default=None, metavar="DIR", help="also write Allure results to DIR (allure-pytest)"
    )
    run.add_argument(
        "--rerun-failed",
        type=Path,
        default=None,
        metavar="RECORDS",
        help="re-run exactly the cases that failed, errored or passed despite a waiver in an earlier run "
        "(its records.jsonl or folder); targets default to that run's",
    )
    run.set_defaults(handler=cmd_run)

    certify = commands.add_parser("certify", help="run every spec against one target; write a certificate and badge")
    certify.add_argument("target", metavar="TARGET", help="a target such as memory, s3@moto or module:Class")
    _run_options(certify, out=Path("certification"))
    certify.add_argument("--explore", type=int, default=None, metavar="N", help="also explore N generated sequences")
    certify.set_defaults(handler=cmd_certify)

    verify = commands.add_parser("verify", help="re-check a certificate against its records and the spec files")
    verify.add_argument("certificate", type=Path, metavar="CERTIFICATE")
    verify.add_argument(
        "--records", type=Path, default=None, metavar="FILE", help="default: the records file next to the certificate"
    )
    verify.add_argument(
        "--specs-dir", type=Path, default=None, metavar="DIR", help="spec files (default: the bundled ones)"
    )
    verify.set_defaults(handler=cmd_verify)

    compare = commands.add_parser(
        "diff", help="compare two runs: new failures, fixes, changes; exit 1 on a new failure"
    )
    compare.add_argument("old", type=Path, metavar="OLD", help="a records.jsonl or a run's folder")
    compare.add_argument("new", type=Path, metavar="NEW", help="a records.jsonl or a run's folder")
    compare.add_argument("--markdown", action="store_true", help="Markdown for a pull-request comment")
    compare.set_defaults(handler=cmd_diff)

    report = commands.add_parser("report", help="join the records of several runs (CI shards) into one report")
    report.add_argument(
        "--merge", nargs="+", type=Path, required=True, metavar="DIR", help="run folders; a later one wins a case"
    )
    report.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the joined report goes")
    report.set_defaults(handler=cmd_report)

    specs = commands.add_parser("specs", help="list, lint or show specs")
    specs.add_argument("action", choices=["list", "lint", "show"])
    specs.add_argument("id", nargs="?", help="with show: the spec id or name")
    specs.add_argument("--specs-dir", type=Path, default=None, metavar="DIR")
    specs.set_defaults(handler=cmd_specs)

    drivers = commands.add_parser(
        "drivers", help="describe a driver or target (capabilities, backends), and which bundled targets run here"
    )
    drivers.add_argument("target", nargs="?", metavar="TARGET", help="e.g. s3@moto, mystore:MyDriver, ./mystore.py")
    drivers.add_argument("--option", action="append", default=[], metavar="[TARGET:]KEY=VALUE", help="a driver option")
    drivers.set_defaults(handler=cmd_drivers)

    init = commands.add_parser("init", help="start a driver: NAME.py skeleton, known-issues.yaml and a CI workflow")
    init.add_argument("name", metavar="NAME", help="the driver's module name, e.g. mystore")
    init.add_argument("--dir", type=Path, default=Path("."), metavar="DIR", help="where to write (default: here)")
    init.set_defaults(handler=cmd_init)

    clean = commands.add_parser("clean", help="delete what an interrupted run left behind, from its journal")
    clean.add_argument("--run-id", required=True)
    clean.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR")
    clean.add_argument(
        "--option",
        action="append",
        default=[],
        type=Option.parse,
        metavar="[TARGET:]KEY=VALUE",
        help="a driver option (credentials otherwise come from the environment); repeatable",
    )
    clean.set_defaults(handler=cmd_clean)

    explore = commands.add_parser(
        "explore", help="generated operation sequences against a reference model; a failure becomes a YAML case"
    )
    explore.add_argument("target", metavar="TARGET", help="a target such as memory, s3@moto or module:Class")
    explore.add_argument("--examples", type=int, default=100, metavar="N", help="sequences to try (default: 100)")
    explore.add_argument("--steps", type=int, default=100, metavar="N", help="longest sequence (default: 100)")
    explore.add_argument("--time", type=float, default=None, metavar="S", help="start no sequence after S seconds")
    explore.add_argument("--seed", type=int, default=None, metavar="S", help="the seed (default: random, reported)")
    explore.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR", help="output (default: reports)")
    explore.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a driver option")
    explore.add_argument("--timeout", type=float, default=60.0, metavar="S", help="per-step timeout (default: 60)")
    explore.add_argument("--shrink-time", type=float, default=SHRINK_SECONDS, metavar="S",
                         help=f"shrink a failure for at most S seconds (default: {SHRINK_SECONDS:g})")  # fmt: skip
    explore.set_defaults(handler=cmd_explore)
    return parser


def _run_options(parser: argparse.ArgumentParser, out: Path) -> None:
    """Options shared by run and certify: driver options, waivers, specs, output, timeout, workers."""
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="[TARGET:]KEY=VALUE",
        help="a driver option; repeatable",
    )
    parser.add_argument(
        "--known-issues",
        action="append",
        default=[],
        metavar="FILE",
        help="a known-issues file of waivers; repeatable",
    )
    parser.add_argument(
        "--specs-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="spec files to use instead of the bundled ones",
    )
    parser.add_argument("--out", type=Path, default=out, metavar="DIR", help=f"output folder (default: {out})")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="per-case timeout (default: 60)")
    parser.add_argument(
        "--max-expansions",
        type=int,
        default=DEFAULT_LIMITS.max_expansions,
        metavar="N",
        help=f"refuse a spec case that expands to more runs (default: {DEFAULT_LIMITS.max_expansions:,})",
    )
    parser.add_argument(
        "--max-payload",
        type=_size,
        default=DEFAULT_LIMITS.max_payload,
        metavar="SIZE",
        help="refuse a spec payload larger than this, e.g. 256MiB (default: 64MiB)",
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        default=None,
        metavar="TIME",
        help="delay every request to a proxied target by this much, e.g. 50ms",
    )
    parser.add_argument(
        "--bandwidth",
        type=_bandwidth,
        default=None,
        metavar="RATE",
        help="cap request and response bodies of proxied targets, e.g. 1MiB/s",
    )
    parser.add_argument("-n", "--workers", default=None, metavar="N", help="run on N processes (pytest-xdist), or auto")


def _level(text: str) -> str:
    """A clause level in any case: must, MUST."""
    if text.upper() in LEVELS:
        return text.upper()
    raise argparse.ArgumentTypeError(f"unknown level {text!r}{suggest(text, LEVELS)}; levels: {', '.join(LEVELS)}")


def _size(text: str) -> int:
    """A size option: 12, 4KiB, 256MiB."""
    try:
        return parse_size(text)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _latency(text: str) -> float:
    """A latency option in seconds: 50ms, 0.2s or 0.2."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ms|s)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad latency {text!r} (use 50ms or 0.2s)")
    return float(match[1]) / (1000 if match[2] == "ms" else 1)


def _bandwidth(text: str) -> int:
    """A bandwidth option in bytes a second: 1MiB/s, 512KiB/s or 65536."""
    rate = _size(text.strip().removesuffix("/s"))
    if rate <= 0:
        raise argparse.ArgumentTypeError("the bandwidth must be more than 0 bytes a second")
    return rate


def _limits(args: argparse.Namespace) -> SpecLimits:
    return SpecLimits(max_expansions=args.max_expansions, max_payload=args.max_payload)


def _check_waivers(args: argparse.Namespace, specs: list[Spec], targets: list[Target]) -> None:
    """Every known-issues file of the run parses and names only targets, specs, clauses and cases that exist."""
    names = [t.name for t in targets]
    problems = check_waivers(run_waivers(names, map(Path, args.known_issues)), specs, set(names))
    if problems:
        raise SpecError(problems)


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    targets = [_target(args, t) for t in args.driver + args.target]
    only = failed = None
    if args.rerun_failed:
        earlier = _earlier_run(args.rerun_failed, args.out)
        failed = [r for r in earlier if r["outcome"] in PROBLEMS]
        if not failed:
            print(f"gspc: nothing to re-run: no case failed in {args.rerun_failed}")
            return 0
        targets = targets or [Target.parse(t) for t in sorted({r["target"] for r in failed})]
        only = [r["nodeid"] for r in failed]
    targets = targets or default_targets()
    backends = _start_backends(args, targets)  # while the specs load (0.3 s): moto's server takes 0.6 s to start
    try:
        specs_dir = args.specs_dir or bundled_specs_dir()
        every_spec = load_specs(spec_files(specs_dir), _limits(args))
        specs = _select(every_spec, args.spec)
        if failed:
            specs = [s for s in specs if s.name in {r["spec"] for r in failed}]  # collect only the specs involved
        if args.allure:
            if importlib.util.find_spec("allure_pytest") is None:
                raise UsageError(ALLURE_MISSING)
            # cleaned here, once: --clean-alluredir would make every xdist worker wipe the others' results
            shutil.rmtree(args.allure, ignore_errors=True)
            extra = ["-p", "allure_pytest.plugin", "--alluredir", str(args.allure.resolve()), *extra]
        if args.level:
            extra = ["-m", " or ".join(args.level), *extra]
        _check_waivers(args, every_spec, targets)
    except BaseException:  # nothing was written yet; a server child still starting exits with this process
        backends.shared.close(wait=0)
        raise
    code = _pytest_run(args, specs, specs_dir, backends, extra, only)
    if args.rerun_failed and code != USAGE:
        _report_uncollected({r["nodeid"] for r in failed}, args.out)
    return code


def _report_uncollected(wanted: set[str], out: Path) -> None:
    """Name the failed cases a re-run could not select again (their spec, params or target changed)."""
    missing = sorted(wanted - {r["nodeid"] for r in load_run(out)})
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        print(f"gspc: {len(missing)} failed cases were not re-run (changed spec, params or target, or left out "
              f"by a selection): {shown}", file=sys.stderr)  # fmt: skip


def _earlier_run(path: Path, out: Path) -> list[dict]:
    """The records of the run to repeat; refuses an --out that would overwrite them."""
    try:
        earlier = load_run(path)
    except FileNotFoundError as exc:
        raise UsageError(f"--rerun-failed: {exc}") from None
    if records_path(path).resolve().is_relative_to(out.resolve()):
        raise UsageError(f"--rerun-failed: give another --out than {out}: the re-run would overwrite the records")
    return earlier


@dataclass
class _Backends:
    """A run's targets, checked, and the backends they share, starting in the background."""

    targets: list[Target]
    shared: SharedBackends
    redactor: Redactor  # knows the options' secrets and learns the backends' (an emulator's token)


def _start_backends(args: argparse.Namespace, targets: list[Target]) -> _Backends:
    """Check every target's driver and options (a usage error before pytest starts), then start their backends."""
    for target in targets:
        try:
            cls = load_driver_class(target.driver)
            if not target.driver.startswith(EXEC):  # an exec driver learns its service only when it starts
                backend_of(target, cls)
        except DriverError as exc:
            raise UsageError(f"{exc} ({_given(args, target.name)})") from None
    try:
        chosen = parse_targets([t.name for t in targets], args.option)  # each with the options it is given
    except RunError as exc:
        raise UsageError(f"{exc} (--option)") from None
    redactor = Redactor()
    redactor.learn_options(dict(option.partition("=")[::2] for option in args.option))
    shared = SharedBackends()
    shared.start_in_background(chosen, redactor.learn_options)
    return _Backends(targets, shared, redactor)


def _pytest_run(args: argparse.Namespace, specs: list[Spec], specs_dir: Path, backends: _Backends,
                extra: list[str], only: list[str] | None = None) -> int:  # fmt: skip
    """Run pytest over spec files and targets in a supervised child; the run's exit code (0 to 4).

    ``only`` narrows the run to these node ids (a re-run of failed cases). The backends stop at the end.
    """
    shared, redactor = backends.shared, backends.redactor
    redactor.learn_specs(specs)
    out = args.out.resolve()
    try:
        outputs.reset(out)  # every output is this run's: nothing stale survives in a reused --out
        run_id = new_run_id()
        started = dt.datetime.now(dt.UTC)
        command = [sys.executable, "-m", "pytest", *_pytest_args(args, specs, specs_dir, backends.targets, out, run_id)]
        if only is not None:
            outputs.write_selection(out / "selections" / "0.jsonl", only)
            command += ["--gspc-only", str(out / "selections" / "0.jsonl")]
        command += ["--gspc-endpoints", str(out / ENDPOINTS), *extra]
        # only the plugins a run needs are loaded, so nothing else installed changes a run
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        # the backends start once for every child and worker, while the first child does: it waits for them
        # (the endpoints file says pending) and refuses in one line if one fails
        shared.write_to(out / ENDPOINTS)
        ending = supervise(command, env, out, args.timeout, redactor, busy=lambda: shared.starting)
    except BaseException:
        shared.close(wait=STOP_WAIT)
        raise
    finally:  # the backends outlive every restarted child, and no longer
        (out / ENDPOINTS).unlink(missing_ok=True)
    stopping = threading.Thread(target=shared.close, name="gspc-backends-stop")
    stopping.start()  # they stop while the run is judged and reported
    try:
        return _conclude(args, out, run_id, started, ending, redactor)
    finally:
        stopping.join()


def _pytest_args(args: argparse.Namespace, specs: list[Spec], specs_dir: Path, targets: list[Target], out: Path,
                 run_id: str) -> list[str]:  # fmt: skip
    """The pytest child's arguments for a run of these specs and targets."""
    pytest_args = [
        *(str(s.path) for s in specs),
        *PLUGINS,
        "-q",
        "-p", "no:cacheprovider",
        "-p", "no:faulthandler",  # the plugin dumps fatal signals where the records' merge finds them
        "--rootdir", str(specs_dir),
        "-c", os.devnull,
        "--gspc-supervised",
        "--gspc-out", str(out),
        "--gspc-run-id", run_id,
        "--gspc-timeout", str(args.timeout),
        "--gspc-max-expansions", str(args.max_expansions),
        "--gspc-max-payload", str(args.max_payload),
        "--gspc-schema-checked", ",".join(schema_checked()),  # the children need not check these files again
    ]  # fmt: skip
    for target in targets:
        pytest_args += ["--gspc-target", target.name]
    for flag, value in (("--gspc-latency", args.latency), ("--gspc-bandwidth", args.bandwidth)):
        if value is not None:
            pytest_args += [flag, str(value)]
    for flag, values in (("--gspc-option", args.option), ("--gspc-known-issues", args.known_issues)):
        for value in values:
            pytest_args += [flag, value]
    if args.workers:  # an idle worker takes half of a busy one's queue (a --dist after -- still wins)
        pytest_args += ["-n", str(args.workers), "--dist", "worksteal"]
    return pytest_args


def _conclude(args: argparse.Namespace, out: Path, run_id: str, started: dt.datetime, ending: Ending,
              redactor: Redactor) -> int:  # fmt: skip
    """Judge and report a supervised run once its children are gone; the run's exit code."""
    for note in ending.notes:
        _say(f"gspc: {note}", redactor)
    collected = outputs.manifest(out)
    if collected is None and ending.last.code in REFUSED and not ending.last.interrupted:
        return USAGE  # pytest refused its input or a target could not open: it said why on one line
    if collected is None and ending.last.stuck:
        return USAGE  # opening a target hung: the note above says which
    if collected == {} and not ending.last.interrupted:
        _say("gspc: no case selected: check --spec, --level and the pytest arguments after --", redactor)
        return NO_CASE
    summary = finalize(out, run_id, started, ending.last.interrupted)
    if getattr(args, "allure", None):
        from conformance.report.allure_results import write_run_files  # needs allure-pytest, checked above

        write_run_files(args.allure.resolve(), summary)
    for folder in (out, getattr(args, "allure", None)):
        if folder is not None:
            scrub_tree(folder.resolve(), redactor)
    ended = collected is not None and not ending.last.interrupted
    lines = [f"{' gsp-conformance ':=^80}", *matrix(summary["verdicts"], load_run(out)),
             *behaviour_lines(summary["behaviours"]), f"cases: {counts(summary['totals'])}",
             *([] if ended else ["gspc: the run ended before every case had run: incomplete"]),
             f"run {run_id}: {summary['verdict']}; records.jsonl, summary.json and junit.xml in {_shown(out)}",
             f"report: {_shown(out / 'index.html')}"]  # fmt: skip
    _say("\n".join(lines), redactor)
    return summary["exit_code"] if ended else INCOMPLETE


def _target(args: argparse.Namespace, name: str) -> Target:
    try:
        return Target.parse(name)
    except DriverError as exc:
        raise UsageError(f"{exc} ({_given(args, name)})") from None


def _given(args: argparse.Namespace, name: str) -> str:
    """How the user named a target: ``--driver X``, ``--target X`` or ``gspc certify X``."""
    for flag in ("driver", "target"):
        given = getattr(args, flag, None)
        if isinstance(given, list) and name in given:
            return f"--{flag} {name}"
    return f"gspc {args.command} {name}"


def _say(text: str, redactor: Redactor) -> None:
    print(printable(redactor.scrub(text)), flush=True)


def cmd_certify(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:  # a certificate covers every case of every spec: no selection may narrow it
        raise UsageError(f"certify runs every case; pytest arguments are not allowed: {' '.join(extra)}")
    specs_dir = args.specs_dir or bundled_specs_dir()
    specs = load_specs(spec_files(specs_dir), _limits(args))
    _check_waivers(args, specs, [_target(args, args.target)])
    out = args.out.resolve()
    for stale in ("certificate.json", "badge.svg", "badge.json", "index.html"):
        (out / stale).unlink(missing_ok=True)
    code = _pytest_run(args, specs, specs_dir, _start_backends(args, [Target.parse(args.target)]), [])
    if code == USAGE:
        return code
    records = load_run(out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    html = out / "index.html" if (out / "index.html").is_file() else None  # written by the run's finalize
    declared = _declared(args.target, args.option, args.timeout)
    explored = None
    if args.explore:  # its own folder: explore writes its outputs afresh, the run's records stay as certified
        from conformance.explore.run import explore

        mine = [o.split(":", 1)[1] if o.startswith(f"{args.target}:") else o for o in args.option]
        result = explore(args.target, options=mine, out=out / "exploration", examples=args.explore,
                         timeout=args.timeout)  # fmt: skip
        explored, code = {**result.as_dict(), "folder": "exploration"}, code or result.exit_code
    cert = certificate.build(records, out / "records.jsonl", summary, html, declared, explored)
    certificate.write(out / "certificate.json", cert)
    scope = certificate.implemented(cert)
    (out / "badge.svg").write_text(badge.svg(cert["verdict"], subject=cert["target"], scope=scope), encoding="utf-8")
    endpoint = badge.endpoint(cert["verdict"], scope=scope)
    (out / "badge.json").write_text(json.dumps(endpoint, indent=2) + "\n", encoding="utf-8")
    print(f"gspc: {cert['target']} is {cert['verdict']}: {certificate.by_verdict(cert)}; "
          f"certificate, badge{', HTML report' if html else ''} and records in {_shown(out)}")  # fmt: skip
    return code


def _declared(name: str, options: list[str], timeout: float) -> Capabilities | None:
    """What the target's driver declares (the certified profile), or None if it cannot be opened again in time."""
    try:
        with deadline(timeout, "opening the target again took too long"):  # unsupervised here: bound it
            opened = open_target(parse_targets([name], options)[0])
            try:
                return opened.capabilities
            finally:
                opened.close()
    except (RunError, DriverError, TargetUnavailable, CaseTimeout):
        return None


def cmd_verify(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        cert = json.loads(args.certificate.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{args.certificate}: cannot read the certificate: {exc}") from None
    records = args.records
    if records is None:
        name = cert.get("records", {}).get("file", "records.jsonl") if isinstance(cert, dict) else "records.jsonl"
        records = args.certificate.parent / Path(name).name  # a bare name: never a path the certificate chooses
    problems = certificate.verify(cert, records, args.specs_dir or bundled_specs_dir())
    for problem in problems:
        print(f"{args.certificate}: {problem}")
    if problems:
        return 1
    print(f"{args.certificate}: verified: {cert['target']} is {cert['verdict']}: {certificate.by_verdict(cert)} "
          f"({cert['records']['count']} records)")  # fmt: skip
    return 0


def cmd_diff(args: argparse.Namespace, extra: list[str]) -> int:
    runs = []
    for path in (args.old, args.new):
        try:
            runs.append(load_run(path))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    found = diff.compare(*runs)
    render = diff.markdown if args.markdown else diff.text
    sys.stdout.write(render(found, str(args.old), str(args.new)))
    return 1 if found.new_failures else 0


def cmd_report(args: argparse.Namespace, extra: list[str]) -> int:
    out = args.out.resolve()
    if any(run.resolve() == out for run in args.merge):
        raise UsageError("--out must be a new folder, not one of the runs merged")
    try:
        summary = merge_runs(args.merge, out)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    records = load_run(out)
    print("\n".join(matrix(summary["verdicts"], records)))
    print(f"gspc: {len(records)} records of {len(args.merge)} runs: {summary['verdict']}; "
          f"records.jsonl, summary.json, index.html in {_shown(out)}")  # fmt: skip
    return summary["exit_code"]


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _select(specs: list[Spec], wanted: list[str], where: str = "--spec") -> list[Spec]:
    """The specs named by id (GSP-46), name (delete), either in any case, or spec file; UsageError for others."""
    if not wanted:
        return specs
    by_key = {key.lower(): s for s in specs for key in (s.id, s.name)}
    chosen: dict[str, Spec] = {}
    for name in wanted:
        spec = by_key.get(name.lower()) or _spec_file(specs, name, where)
        if spec is None:
            known = ", ".join(f"{s.id} {s.name}" for s in specs)
            hint = suggest(name, [s.name for s in specs] + [s.id for s in specs])
            raise UsageError(f"unknown spec {name!r}{hint}; known: {known} ({where} {name})")
        chosen[spec.name] = spec
    return [s for s in specs if s.name in chosen]


def _spec_file(specs: list[Spec], name: str, where: str) -> Spec | None:
    """The loaded spec a file argument names: the same file, or a copy of it with the same bytes."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return None
    for spec in specs:
        copy = spec.path.name == path.name and spec.path.read_bytes() == path.read_bytes()
        if copy or spec.path.resolve() == path.resolve():
            return spec
    folder = specs[0].path.parent if specs else "the specs folder"
    raise UsageError(f"spec file {name} is not one of the specs in {folder}; run it with --specs-dir "
                     f"{path.parent or '.'} ({where} {name})")  # fmt: skip


def cmd_specs(args: argparse.Namespace, extra: list[str]) -> int:
    specs = load_specs(spec_files(args.specs_dir))
    if args.action == "lint":
        cases = sum(len(s.cases) for s in specs)
        print(f"{len(specs)} specs, {sum(len(s.clauses) for s in specs)} clauses, {cases} cases: ok")
        return 0
    if args.action == "list":
        print(f"{'id':8} {'name':8} {'version':7} {'clauses (MUST/SHOULD/MAY/IMPL)':31} {'cases':5}  title")
        for s in specs:
            levels = Counter(c.level for c in s.clauses.values())
            split = "/".join(str(levels[level]) for level in LEVELS)
            print(f"{s.id:8} {s.name:8} {s.version:<7} {split:31} {len(s.cases):<5}  {s.title}")
        return 0
    if not args.id:
        raise UsageError("specs show needs a spec id or name")
    (spec,) = _select(specs, [args.id], "gspc specs show")
    print(f"{spec.id} {spec.title} (version {spec.version}, {spec.path})\nsource: {spec.source}\n")
    for clause in spec.clauses.values():
        print(f"{clause.id}  {clause.level} {clause.status}  [{clause.rule}]\n    {clause.text}")
        for case in (c for c in spec.cases if c.clause == clause.id):
            gate = f"  requires {', '.join(case.requires)}" if case.requires else ""
            gate += f"  unless {', '.join(case.unless)}" if case.unless else ""
            runs = len(case.expansions())
            print(f"    - {case.id}{f' (x{runs})' if runs > 1 else ''}: {case.title}{gate}")
    return 0


def cmd_drivers(args: argparse.Namespace, extra: list[str]) -> int:
    if args.target:
        try:
            print("\n".join(describe_target(args.target, args.option)))
        except DriverError as exc:
            raise UsageError(f"{exc} (gspc drivers {args.target})") from None
        return 0
    for name, ref in sorted(driver_names().items()):
        print(f"{name}  ({ref})")
    print("bundled targets:")
    targets = list(bundled_targets())
    width = max(len(name) for name, _ in targets)
    for name, status in targets:
        print(f"  {name.ljust(width)}  {status}")
    print(f"backends: {', '.join(known_backends())}")
    print("gspc drivers TARGET describes one (its capabilities, backends, and whether it runs here), "
          "e.g. gspc drivers ./mystore.py:MyDriver")  # fmt: skip
    return 0


def cmd_init(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        target, written = scaffold.init(args.name, args.dir)
    except scaffold.ScaffoldError as exc:
        raise UsageError(f"{exc} (gspc init {args.name})") from None
    print(f"gspc: wrote {', '.join(_shown(p) for p in written)}")
    where = "" if args.dir.resolve() == Path.cwd() else f"cd {_shown(args.dir)} && "
    print(f"next: {where}gspc certify {target} --known-issues {written[1].name}, then fill in {written[0].name} "
          "one operation at a time, declaring each in capabilities()")  # fmt: skip
    return 0


def cmd_clean(args: argparse.Namespace, extra: list[str]) -> int:
    return clean_run(args.out / "ledger", args.run_id, args.option, Redactor())


def cmd_explore(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise UsageError(f"explore takes no pytest arguments: {' '.join(extra)}")
    from conformance.explore.run import ExploreUsage, explore  # Hypothesis is imported only by explore

    try:
        return explore(args.target, options=args.option, out=args.out, examples=args.examples, steps=args.steps,
                       seconds=args.time, seed_value=args.seed, timeout=args.timeout,
                       shrink_seconds=args.shrink_time).exit_code  # fmt: skip
    except ExploreUsage as exc:
        raise UsageError(str(exc)) from None
