"""A CLI write against the floor of the libraries it stands on, measured in one run.

    python bench/bench_cli_write.py [--rounds 15] [--profile]

Times ``proctor procedure update greet --code FILE`` (one procedure, a real change each
time, the branch checked out, bytecode compiled first as an install does) and
``python -c "import click; from pydantic import BaseModel"``, taking turns round by
round, and prints the medians and their ratio (target: <= 1.3x); and, for scale, what
building one pydantic model alone costs over that floor. ``--profile`` also
counts the git processes one write starts (a ``git`` shim first on PATH), lists the
imports that cost most (``python -X importtime``) and times the dataclasses a write
creates.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import proctor

BIN = Path(sys.executable).parent
CODE = 'def run(name: str) -> str:\n    """Greet.\n\n    Args:\n        name: Who.\n    """\n    return "{greeting} " + name\n'
FLOOR = [sys.executable, "-c", "import click; from pydantic import BaseModel"]
# What building one pydantic model costs on top of the floor, in a fresh process: the
# first model imports the rest of pydantic's schema machinery and (unless spared, as
# proctor's CLI spares it when no distribution declares a pydantic plugin) searches every
# installed distribution for pydantic plugins.
ONE_MODEL = "import click; from pydantic import BaseModel\nclass M(BaseModel):\n    a: int\nM(a=1)"
SPARED = (
    "import sys, types; m = types.ModuleType('pydantic.plugin._loader');"
    " m.get_plugins = lambda: (); sys.modules[m.__name__] = m\n" + ONE_MODEL
)
REFERENCES = {
    "floor + one pydantic model": [sys.executable, "-c", ONE_MODEL],
    "floor + one pydantic model, plugin search spared": [sys.executable, "-c", SPARED],
}


def env() -> dict[str, str]:
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def timed(cmd: list[str], cwd: Path, e: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=e, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def server_env(e: dict[str, str], folder: Path) -> dict[str, str]:
    """The environment that sends a command through the command server in ``folder``."""
    return {**e, "PROCTOR_SERVER": "1", "PROCTOR_SERVER_DIR": str(folder)}


def server_report(e: dict[str, str], cwd: Path, *args: str) -> dict[str, object]:
    import json

    proc = subprocess.run(
        [str(BIN / "proctor"), "server", *args, "--json"],
        cwd=cwd, env=e, check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )  # fmt: skip
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def setup(root: Path) -> tuple[Path, list[Path]]:
    repo = root / "repo"
    e = env()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=e)
    subprocess.run(
        [str(BIN / "proctor"), "init", str(repo)], check=True, env=e, stdout=subprocess.DEVNULL
    )
    codes = []
    for i, greeting in enumerate(("hello", "hi")):
        path = root / f"code{i}.py"
        path.write_text(CODE.format(greeting=greeting))
        codes.append(path)
    subprocess.run(
        [str(BIN / "proctor"), "procedure", "create", "greet", "--code", str(codes[1])],
        cwd=repo,
        check=True,
        env=e,
        stdout=subprocess.DEVNULL,
    )
    return repo, codes


def write_cmd(code: Path) -> list[str]:
    return [str(BIN / "proctor"), "procedure", "update", "greet", "--code", str(code)]


def count_git(repo: Path, code: Path, root: Path) -> list[str]:
    """The git processes one write starts: a shim first on PATH logs each one."""
    shim = root / "shim"
    shim.mkdir(exist_ok=True)
    log = root / "git.log"
    real = shutil.which("git")
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (shim / "git").chmod(0o755)
    e = {**env(), "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    log.write_text("")
    subprocess.run(write_cmd(code), cwd=repo, env=e, check=True, stdout=subprocess.DEVNULL)
    return [line for line in log.read_text().splitlines() if line]


def import_profile(repo: Path, code: Path, top: int = 12) -> list[tuple[int, str]]:
    """The imports a write spends most on (cumulative microseconds, module)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from proctor.cli import main; sys.exit(main(sys.argv[1:]))",
            "procedure",
            "update",
            "greet",
            "--code",
            str(code),
        ],
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition(":")
        _self_us, cumulative, name = rest.split("|")
        if not name.startswith("  "):  # top-level imports only (nested ones are indented)
            rows.append((int(cumulative.strip()), name.strip()))
    return sorted(rows, reverse=True)[:top]


# Run in a fresh interpreter: time every dataclass a CLI write creates (the methods a
# dataclass generates are compiled from source at each start, unlike a module's code,
# whose bytecode is cached), and the same generated methods compiled once and loaded.
DATACLASS_PROBE = r"""
import dataclasses, json, marshal, sys, time
created = []
original = dataclasses._process_class
def timed(cls, *args, **kw):
    start = time.perf_counter()
    try:
        return original(cls, *args, **kw)
    finally:
        created.append((cls.__module__, time.perf_counter() - start))
dataclasses._process_class = timed
from proctor.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
ours = [t for module, t in created if module.split(".")[0] == "proctor"]
source = "def __init__(self, a, b, c):\n    self.a = a; self.b = b; self.c = c\n" * 3
start = time.perf_counter()
for _ in range(100):
    compile(source, "<dataclass>", "exec")
compiled = (time.perf_counter() - start) / 100
code = marshal.dumps(compile(source, "<dataclass>", "exec"))
start = time.perf_counter()
for _ in range(100):
    marshal.loads(code)
loaded = (time.perf_counter() - start) / 100
print(json.dumps({"all": len(created), "ours": len(ours), "ours_s": sum(ours),
                  "others_s": sum(t for _m, t in created) - sum(ours),
                  "compile_s": compiled, "load_s": loaded}))
"""


def dataclass_cost(repo: Path, code: Path) -> dict[str, float]:
    """How many dataclasses one CLI write creates, proctor's and its libraries', and
    what creating them costs; and three generated methods compiled vs loaded."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", DATACLASS_PROBE, "procedure", "update", "greet", "--code", str(code)],
        cwd=repo, env=env(), capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"the dataclass probe failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    compileall.compile_dir(os.path.dirname(proctor.__file__), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, codes = setup(root)
        e = env()
        # The command server's socket folder: short (a socket path has at most 107 bytes).
        folder = Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))
        served_env = server_env(e, folder)
        server_report(served_env, repo, "start")
        # Each write changes the code: the two files take turns, whoever writes.
        turn = iter(codes * (2 * args.rounds + 8))
        try:
            for _ in range(2):  # warm caches
                timed(write_cmd(next(turn)), repo, e)
                timed(write_cmd(next(turn)), repo, served_env)
                timed(FLOOR, repo, e)
            before = int(str(server_report(served_env, repo, "status")["served"]))
            writes, served, floors = [], [], []
            refs: dict[str, list[float]] = {label: [] for label in REFERENCES}
            for _ in range(args.rounds):
                writes.append(timed(write_cmd(next(turn)), repo, e))
                served.append(timed(write_cmd(next(turn)), repo, served_env))
                floors.append(timed(FLOOR, repo, e))
                for label, cmd in REFERENCES.items():
                    refs[label].append(timed(cmd, repo, e))
            after = int(str(server_report(served_env, repo, "status")["served"]))
        finally:
            server_report(served_env, repo, "stop")
            shutil.rmtree(folder, ignore_errors=True)
        if after - before != args.rounds:
            raise SystemExit(f"only {after - before} of {args.rounds} writes were served")
        w, f = statistics.median(writes), statistics.median(floors)
        s = statistics.median(served)
        print(f"proctor procedure update (one procedure): median {w * 1000:.0f} ms")
        print(f"python -c 'import click; from pydantic import BaseModel': median {f * 1000:.0f} ms")
        print(f"ratio: {w / f:.2f}x (target <= 1.3x), {args.rounds} rounds taking turns")
        print(
            f"the same write through the command server (PROCTOR_SERVER=1, running): "
            f"median {s * 1000:.0f} ms, {s / f:.2f}x the floor; every one of them served"
        )
        for label, times in refs.items():
            r = statistics.median(times)
            print(f"{label}: median {r * 1000:.0f} ms, {r / f:.2f}x the floor")
        if args.profile:
            calls = count_git(repo, next(turn), root)
            print(f"git processes per write: {len(calls)}")
            for call in calls:
                print(f"  git {call}")
            print("top-level imports by cumulative time (us):")
            for us, name in import_profile(repo, next(turn)):
                print(f"  {us:>8}  {name}")
            cost = dataclass_cost(repo, next(turn))
            print(
                f"dataclasses created by one write: {cost['all']:.0f}, {cost['ours']:.0f} of "
                f"them proctor's: {cost['ours_s'] * 1000:.1f} ms "
                f"({cost['ours_s'] / f:.2f}x the floor), the libraries' "
                f"{cost['others_s'] * 1000:.1f} ms"
            )
            print(
                f"three generated methods: compiled {cost['compile_s'] * 1000:.3f} ms, "
                f"loaded precompiled {cost['load_s'] * 1000:.3f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
