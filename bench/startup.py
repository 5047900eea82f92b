"""Start-up benchmark: ``python bench/startup.py [--repeat N]``.

Times ``plausible-import --help`` and ``plausible-import send --help`` as a user runs them (a new
interpreter each time, ``python -m importer``), beside ``python -c pass`` measured in the same
run, and prints the fastest of N runs of each (the machine is shared: the fastest is the one
least disturbed). It also lists the heavy modules ``--help`` loaded (there should be none).

Target: ``--help`` under 0.5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# STARTUP_ROOT=DIR times another checkout instead (e.g. the code before a change, for a same-run ratio).
ROOT = Path(os.environ.get("STARTUP_ROOT") or Path(__file__).resolve().parent.parent)
TARGET_S = 0.5
HEAVY = ("pyarrow", "pandas", "numpy", "aiohttp", "rich", "importer.mapping", "importer.readers")


def fastest(command: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
        best = min(best, time.perf_counter() - started)
    return best


def heavy_modules_loaded() -> list[str]:
    code = (
        "import sys\nsys.argv = ['plausible-import', '--help']\nfrom importer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    lines = done.stderr.strip().splitlines()
    return [m for m in lines[-1].split(",") if m] if lines else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    baseline = fastest([sys.executable, "-c", "pass"], args.repeat)
    top = fastest([sys.executable, "-m", "importer", "--help"], args.repeat)
    send = fastest([sys.executable, "-m", "importer", "send", "--help"], args.repeat)
    print(f"python -c pass                 {baseline:6.3f} s")
    print(
        f"plausible-import --help        {top:6.3f} s  ({top / baseline:.1f}x python -c pass; "
        f"target < {TARGET_S} s: {'met' if top < TARGET_S else 'NOT met'})"
    )
    print(f"plausible-import send --help   {send:6.3f} s  ({send / baseline:.1f}x python -c pass)")
    print(f"heavy modules loaded by --help: {', '.join(heavy_modules_loaded()) or 'none'}")


if __name__ == "__main__":
    main()
