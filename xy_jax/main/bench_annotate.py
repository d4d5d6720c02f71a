"""Load benchmark of the annotation server: many raters voting at once over loopback.

  python tools/bench_annotate.py [--raters 50] [--seconds 60] [--max_votes 1000]

Builds a fresh database (every rater assigned every item, --max_votes items, so no rater votes on
an item twice), starts `tools/annotate.py serve` on 127.0.0.1 with an ephemeral port as its own
process (its request log goes to a file beside the database), and runs one thread per rater, each
with its own token and session, doing what a browser does for a vote (next item, item page, POST
/vote) until --seconds pass or it has cast --max_votes votes. Prints votes/s, p50 / p99 latency of
the vote POST and of the whole cycle, and the votes the server accepted beside the votes in the
database: it exits 1 when they differ.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from xy_jax.annotate import db, items, raters
from xy_jax.annotate.load import percentile, rate

KIND = "gsb"
START_TIMEOUT_S = 60


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="bench_annotate", description=__doc__.split("\n\n")[0])
  p.add_argument("--raters", type=int, default=50, help="concurrent raters (threads)")
  p.add_argument("--seconds", type=float, default=60.0, help="how long the raters vote")
  p.add_argument("--max_votes", type=int, default=1000, help="votes per rater at most (= items)")
  p.add_argument("--workdir", default=None, help="keep the database and server log here (default: a "
                                                 "temporary directory, removed afterwards)")
  return p


def _setup(workdir: str, n_raters: int, n_items: int) -> tuple[str, list[str]]:
  path = os.path.join(workdir, "bench.sqlite")
  if os.path.exists(path):
    raise ValueError(f"--workdir={workdir}: already holds bench.sqlite; use an empty directory")
  db.init(path)
  rows = os.path.join(workdir, "items.jsonl")
  with open(rows, "w", encoding="utf-8") as f:
    for i in range(n_items):
      f.write(json.dumps({"id": f"bench-{i}", "category": "finance", "prompt": f"问题 {i}: 什么是市盈率?",
                          "answer_a": f"回答 A {i}: 股价与每股收益之比。", "answer_b": f"回答 B {i}: 不知道。"},
                         ensure_ascii=False) + "\n")
  conn = db.connect(path)
  try:
    tokens = raters.add_raters(conn, [f"rater{r:03d}" for r in range(n_raters)])
    items.import_items(conn, rows, KIND, raters_per_item=n_raters)
  finally:
    conn.close()
  return path, list(tokens.values())


def _serve(path: str, log_path: str) -> tuple[subprocess.Popen, int]:
  # The package's own root on the path: the server starts the same code from any directory.
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
  log = open(log_path, "wb")
  proc = subprocess.Popen([sys.executable, "-m", "xy_jax.main.annotate", "serve", "--db", path,
                           "--port", "0", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=log,
                          env=env)
  log.close()
  deadline = time.monotonic() + START_TIMEOUT_S
  while time.monotonic() < deadline:
    with open(log_path, encoding="utf-8", errors="replace") as f:
      found = re.search(r"on http://127\.0\.0\.1:(\d+)/", f.read())
    if found:
      return proc, int(found.group(1))
    if proc.poll() is not None:
      raise RuntimeError(f"the server exited with {proc.returncode}; its log: {log_path}")
    time.sleep(0.05)
  proc.kill()
  raise RuntimeError(f"the server did not start within {START_TIMEOUT_S} s; its log: {log_path}")


def _stop(proc: subprocess.Popen) -> None:
  proc.send_signal(signal.SIGINT)
  try:
    proc.wait(10)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


def bench(workdir: str, args) -> bool:
  path, tokens = _setup(workdir, args.raters, args.max_votes)
  proc, port = _serve(path, os.path.join(workdir, "server.log"))
  try:
    start = time.monotonic()
    deadline = start + args.seconds
    with concurrent.futures.ThreadPoolExecutor(args.raters) as pool:
      runs = list(pool.map(lambda it: rate(port, it[1], KIND, deadline, args.max_votes, it[0]),
                           enumerate(tokens)))
    elapsed = time.monotonic() - start
  finally:
    _stop(proc)
  conn = db.connect(path)
  try:
    stored = conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
  finally:
    conn.close()
  accepted = sum(r.accepted for r in runs)
  vote_ms = [x for r in runs for x in r.vote_ms]
  cycle_ms = [x for r in runs for x in r.cycle_ms]
  errors: dict[str, int] = {}
  for r in runs:
    for what, n in r.errors.items():
      errors[what] = errors.get(what, 0) + n
  print(f"raters: {args.raters}, ran {elapsed:.1f} s (--seconds {args.seconds:g}), "
        f"{sum(r.finished for r in runs)} raters ran out of items")
  print(f"votes/s: {accepted / elapsed:.1f}")
  print(f"vote POST latency: p50 {percentile(vote_ms, 50):.1f} ms, p99 {percentile(vote_ms, 99):.1f} ms")
  print(f"vote cycle (next item, page, POST) latency: p50 {percentile(cycle_ms, 50):.1f} ms, "
        f"p99 {percentile(cycle_ms, 99):.1f} ms")
  print("errors: " + (", ".join(f"{k} x{v}" for k, v in sorted(errors.items())) or "none"))
  same = stored == accepted
  print(f"votes accepted by the server: {accepted}, in the database: {stored}: "
        + ("equal" if same else "DIFFERENT"))
  return same


def main(argv: list[str] | None = None) -> None:
  args = parser().parse_args(argv)
  if args.raters < 1 or args.seconds <= 0 or args.max_votes < 1:
    print("error: --raters and --max_votes must be >= 1 and --seconds > 0", file=sys.stderr)
    sys.exit(2)
  try:
    if args.workdir:
      os.makedirs(args.workdir, exist_ok=True)
      same = bench(args.workdir, args)
    else:
      with tempfile.TemporaryDirectory(prefix="bench_annotate_") as workdir:
        same = bench(workdir, args)
  except KeyboardInterrupt:
    sys.exit(130)
  except (ValueError, OSError, RuntimeError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  sys.exit(0 if same else 1)


if __name__ == "__main__":
  main()
