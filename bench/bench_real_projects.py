"""Benchmark: the safety check beside bandit and ruff's S rules on twelve real projects.

Downloads pinned source distributions with ``pip download --no-deps --no-binary :all:``
into ``bench/_work/sdists``, unpacks them into ``bench/_work/projects`` (once; later runs
reuse them), then runs, each over the whole tree and timed as a subprocess:

* ``proctor check --select safety --format json`` (``-j 1``, and ``-j N`` with one worker
  per CPU);
* ``bandit -r -f json`` (every bandit test, its defaults);
* ``ruff check --select S --output-format json --isolated`` (the projects' own ruff
  configuration, with its ignores and excludes, is not read).

It prints, as markdown, the findings of each tool per family (exec/eval, shell,
subprocess, pickle, yaml, and the families proctor gained with them: TLS, SSH host keys,
weak hashes and ciphers, binding all interfaces, SQL, XML, archives, temporary names,
templates, file modes), the findings per project, and the run times.

Run: ``.venv/bin/python bench/bench_real_projects.py [--jobs N] [--only salt,flask]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
SDISTS = WORK / "sdists"
PROJECTS = WORK / "projects"

#: name -> pinned version; the archive's top directory is ``<name with _>-<version>``.
PINNED: dict[str, str] = {
    "ansible-core": "2.17.5",
    "salt": "3007.1",
    "celery": "5.4.0",
    "setuptools": "75.1.0",
    "click": "8.1.7",
    "flask": "3.0.3",
    "requests": "2.32.3",
    "urllib3": "2.2.3",
    "httpx": "0.27.2",
    "rich": "13.9.2",
    "invoke": "2.2.0",
    "fabric": "3.2.2",
}

# Family of each proctor code; bandit's Bxxx and ruff's Sxxx share numbers.
PROCTOR_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("PS101", "PS102", "PS103", "PS104", "PS107"), "exec/eval"),
    **dict.fromkeys(("PS105", "PS106", "PS108", "PS109"), "dynamic import/getattr"),
    **dict.fromkeys(("PS201", "PS202", "PS203"), "shell"),
    **dict.fromkeys(("PS204", "PS205"), "subprocess"),
    "PS301": "pickle",
    "PS302": "yaml",
    **dict.fromkeys(("PS401", "PS402"), "native code"),
    **dict.fromkeys(("PS501", "PS502", "PS503", "PS504", "PS505"), "introspection"),
    **dict.fromkeys(("PS601", "PS602", "PS603", "PS604"), "leftovers (debuggers, listen)"),
    "PS701": "TLS verification / protocols",
    "PS702": "SSH host keys",
    "PS703": "weak hashes",
    "PS704": "weak ciphers / keys",
    "PS705": "bind all interfaces",
    "PS801": "SQL by formatting",
    "PS802": "XML parsers",
    **dict.fromkeys(("PS803", "PS804"), "archive extraction"),
    "PS805": "temporary names",
    "PS806": "templates / markup",
    "PS807": "file modes",
}
BANDIT_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("102", "307"), "exec/eval"),
    **dict.fromkeys(("602", "604", "605", "609"), "shell"),
    **dict.fromkeys(("603", "606", "607"), "subprocess"),
    **dict.fromkeys(("301", "302", "614"), "pickle"),
    "506": "yaml",
    **dict.fromkeys(("201", "612", "613"), "leftovers (debuggers, listen)"),
    **dict.fromkeys(("323", "501", "502", "503", "504"), "TLS verification / protocols"),
    "507": "SSH host keys",
    **dict.fromkeys(("303", "324"), "weak hashes"),
    **dict.fromkeys(("304", "305", "505"), "weak ciphers / keys"),
    "104": "bind all interfaces",
    **dict.fromkeys(("608", "610", "611"), "SQL by formatting"),
    **dict.fromkeys(tuple(str(n) for n in range(313, 321)), "XML parsers"),
    "202": "archive extraction",
    "306": "temporary names",
    **dict.fromkeys(("308", "701", "702", "703", "704"), "templates / markup"),
    "103": "file modes",
    **dict.fromkeys(tuple(str(n) for n in range(401, 416)), "imports only (B4xx / S4xx)"),
}
FAMILY_ORDER = [
    "exec/eval",
    "dynamic import/getattr",
    "shell",
    "subprocess",
    "pickle",
    "yaml",
    "native code",
    "introspection",
    "leftovers (debuggers, listen)",
    "TLS verification / protocols",
    "SSH host keys",
    "weak hashes",
    "weak ciphers / keys",
    "bind all interfaces",
    "SQL by formatting",
    "XML parsers",
    "archive extraction",
    "temporary names",
    "templates / markup",
    "file modes",
    "imports only (B4xx / S4xx)",
    "other",
    "runner (PC)",
]


def project_dir(name: str, version: str) -> Path:
    return PROJECTS / f"{name.replace('-', '_')}-{version}"


def ensure_project(name: str, version: str) -> Path:
    """The unpacked source tree of ``name==version``, downloaded and unpacked if needed."""
    target = project_dir(name, version)
    if target.is_dir():
        return target
    if not target.is_dir() and name != name.replace("-", "_"):
        alt = PROJECTS / f"{name}-{version}"
        if alt.is_dir():
            return alt
    SDISTS.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()
    found = [
        p
        for p in SDISTS.iterdir()
        if p.name.lower().replace("-", "_").startswith(f"{stem}_{version}")
        and p.name.endswith(".tar.gz")
    ]
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"{name}=={version}",
                "-d",
                str(SDISTS),
            ],
            check=True,
        )
        found = [
            p
            for p in SDISTS.iterdir()
            if p.name.lower().replace("-", "_").startswith(f"{stem}_{version}")
            and p.name.endswith(".tar.gz")
        ]
    PROJECTS.mkdir(parents=True, exist_ok=True)
    with tarfile.open(found[0]) as archive:
        top = archive.getnames()[0].split("/")[0]
        archive.extractall(PROJECTS, filter="data")
    return PROJECTS / top


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"error: {name} not found; install with pip install -e '.[bench]'")
    return found


def _timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=PROJECTS)
    return time.perf_counter() - start, done.stdout


def _project_of(path: str, roots: list[Path]) -> str:
    absolute = (PROJECTS / path).resolve()
    for root in roots:
        if absolute.is_relative_to(root):
            return root.name
    return "?"


def run_proctor(roots: list[Path], jobs: int) -> tuple[float, list[tuple[str, str]]]:
    argv = [_tool("proctor"), "check", "--select", "safety", "--format", "json", "-j", str(jobs)]
    seconds, out = _timed([*argv, *(r.name for r in roots)])
    rows = [(f["path"], f["code"]) for f in json.loads(out or "[]")]
    return seconds, rows


def run_bandit(roots: list[Path]) -> tuple[float, list[tuple[str, str]]]:
    seconds, out = _timed([_tool("bandit"), "-r", "-q", "-f", "json", *(r.name for r in roots)])
    data = json.loads(out) if out.strip() else {"results": []}
    return seconds, [(r["filename"], r["test_id"]) for r in data["results"]]


def run_ruff(roots: list[Path]) -> tuple[float, list[tuple[str, str]]]:
    argv = [
        _tool("ruff"),
        "check",
        "--isolated",
        "--no-cache",
        "--select",
        "S",
        "--output-format",
        "json",
        "--exit-zero",
    ]
    seconds, out = _timed([*argv, *(r.name for r in roots)])
    return seconds, [(r["filename"], r["code"]) for r in json.loads(out or "[]")]


def family(tool: str, code: str) -> str:
    if tool == "proctor":
        if code.startswith("PC"):
            return "runner (PC)"
        return PROCTOR_FAMILIES.get(code, "other")
    return BANDIT_FAMILIES.get(code[1:], "other")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="", help="Comma-separated project names.")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(PINNED)
    roots = [ensure_project(n, PINNED[n]).resolve() for n in names]
    # The repository's own config excludes bench/_work: a config here takes its place.
    (PROJECTS / "proctor.toml").write_text("[check]\n")

    results: dict[str, list[tuple[str, str]]] = {}
    times: dict[str, float] = {}
    times["proctor -j 1"], results["proctor"] = run_proctor(roots, 1)
    times[f"proctor -j {args.jobs}"], _ = run_proctor(roots, args.jobs)
    times["bandit"], results["bandit"] = run_bandit(roots)
    times["ruff --select S"], results["ruff"] = run_ruff(roots)

    files = sum(len(list(r.rglob("*.py"))) for r in roots)
    lines = sum(p.read_bytes().count(b"\n") for r in roots for p in r.rglob("*.py") if p.is_file())
    tools = ["proctor", "bandit", "ruff"]
    print("```")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"projects: {', '.join(f'{n}=={PINNED[n]}' for n in names)}")
    print(f"files: {files}, lines: {lines}")
    print("```")
    print()
    print("| family | proctor | bandit | ruff S |")
    print("|---|---:|---:|---:|")
    counts = {t: collections.Counter(family(t, code) for _, code in results[t]) for t in tools}
    for fam in FAMILY_ORDER:
        row = [counts[t].get(fam, 0) for t in tools]
        if any(row):
            print(f"| {fam} | " + " | ".join(str(n) for n in row) + " |")
    print("| **total** | " + " | ".join(str(len(results[t])) for t in tools) + " |")
    print()
    print("| project | proctor | bandit | ruff S |")
    print("|---|---:|---:|---:|")
    per_project = {
        t: collections.Counter(_project_of(path, roots) for path, _ in results[t]) for t in tools
    }
    for root in roots:
        print(
            f"| {root.name} | " + " | ".join(str(per_project[t][root.name]) for t in tools) + " |"
        )
    print()
    print("| run (wall, subprocess, whole tree) | seconds |")
    print("|---|---:|")
    for label, seconds in times.items():
        print(f"| {label} | {seconds:.2f} |")
    print()
    per_code = collections.Counter(code for _, code in results["proctor"])
    print("- proctor per rule: " + ", ".join(f"{c} {n}" for c, n in sorted(per_code.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
