"""Human annotation: raters vote on pairs of model answers (GSB evaluation or preference pairs).

  python tools/annotate.py init --db ann.sqlite
  python tools/annotate.py add-raters --db ann.sqlite alice bob carol     # prints each token once
  python tools/annotate.py import --db ann.sqlite outcomes.jsonl --kind gsb [--raters_per_item 3]
  python tools/annotate.py import-votes --db ann.sqlite votes.jsonl
  python tools/annotate.py serve --db ann.sqlite [--port 8080] [--host 127.0.0.1]
  python tools/annotate.py progress --db ann.sqlite
  python tools/annotate.py report --db ann.sqlite [--out_dir DIR] [--json]
  python tools/annotate.py export-pairs --db ann.sqlite --out pairs.jsonl [--min_votes 2]

argparse subcommands, not absl flags like the other programs: the subcommands take their own
positional arguments (rater names, a file) and their own options, which absl's one global flag
namespace cannot keep apart, and this program must start without jax (xy_jax.cli imports it) on a
machine that only serves pages to raters. Errors are one line (`error: ...`, exit 2) as elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys

from xy_jax.annotate import db, export, items, raters, report, votes


def _init(args) -> None:
  db.init(args.db)
  print(f"initialised {args.db}")


def _add_raters(args) -> None:
  with _conn(args) as conn:
    for name, token in raters.add_raters(conn, args.names).items():
      print(f"{name}\t{token}")
  print("each token is shown once; only its hash is stored", file=sys.stderr)


def _import(args) -> None:
  with _conn(args) as conn:
    added, kept = items.import_items(conn, args.file, args.kind, args.raters_per_item, args.model_a,
                                     args.model_b)
  print(f"{args.file}: {added} items added, {kept} already there")


def _import_votes(args) -> None:
  with _conn(args) as conn:
    n = votes.import_votes(conn, args.file)
  print(f"{args.file}: {n} votes recorded")


def _serve(args) -> None:
  from xy_jax.annotate.server import make_server
  server = make_server(args.db, args.host, args.port)
  print(f"serving {args.db} on http://{args.host}:{server.server_address[1]}/ (Ctrl-C stops)",
        file=sys.stderr, flush=True)
  try:
    server.serve_forever()
  finally:
    server.server_close()


def _progress(args) -> None:
  with _conn(args) as conn:
    rows = conn.execute("SELECT r.name, COUNT(a.item) AS total, COUNT(v.vote) AS done FROM raters r "
                        "LEFT JOIN assignments a ON a.rater = r.id LEFT JOIN votes v ON v.item = a.item "
                        "AND v.rater = a.rater GROUP BY r.id ORDER BY r.name").fetchall()
  for r in rows:
    print(f"{r['name']:<20} {r['done']}/{r['total']}")
  print(f"{'all':<20} {sum(r['done'] for r in rows)}/{sum(r['total'] for r in rows)}")


def _report(args) -> None:
  with _conn(args) as conn:
    result = report.build(conn, args.seed)
    label_a, label_b = report.labels(conn)
  out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.db))
  path, png = report.write(result, out_dir, label_a, label_b)
  if args.json:
    print(json.dumps(result, ensure_ascii=False, indent=2))
  else:
    print(f"{'category':<28} {'n':>4} {'win':>7} {'tie':>7} {'lose':>7} {'win+tie':>8}  95% CI")
    for name, r in [*result["categories"].items(), ("overall", result["overall"])]:
      if r["n"]:
        low, high = r["win_and_tie_ci95"]
        print(f"{name:<28} {r['n']:>4} {r['win']:>7.1%} {r['tie']:>7.1%} {r['lose']:>7.1%} "
              f"{r['win_and_tie']:>8.1%}  [{low:.1%}, {high:.1%}]")
      else:
        print(f"{name:<28} {0:>4}  (no votes)")
  print(f"report: {path}" + (f"; chart: {png}" if png else ""), file=sys.stderr)


def _export(args) -> None:
  with _conn(args) as conn:
    counts = export.export_pairs(conn, args.out, args.min_votes, args.min_agreement)
  print(f"{args.out}: {counts['pairs']} pairs ({counts['ties']} ties, {counts['too_few_votes']} with too "
        f"few votes, {counts['below_agreement']} below --min_agreement dropped)")


class _conn:
  def __init__(self, args):
    self.path = args.db

  def __enter__(self) -> sqlite3.Connection:
    self.conn = db.connect(self.path)
    return self.conn

  def __exit__(self, *exc):
    self.conn.close()
    return False


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="annotate", description=__doc__.split("\n\n")[0])
  sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

  def command(name, fn, help):
    c = sub.add_parser(name, help=help)
    c.add_argument("--db", required=True, help="the annotation database (SQLite)")
    c.set_defaults(fn=fn)
    return c

  command("init", _init, "create the database")
  c = command("add-raters", _add_raters, "add raters and print their tokens")
  c.add_argument("names", nargs="+", metavar="NAME")
  c = command("import", _import, "import items (JSONL) and assign them to raters")
  c.add_argument("file")
  c.add_argument("--kind", required=True, choices=items.KINDS)
  c.add_argument("--raters_per_item", type=int, default=3, help="raters assigned to each item")
  c.add_argument("--model_a", default="A", help="model A's name where the items do not carry it")
  c.add_argument("--model_b", default="B", help="model B's name where the items do not carry it")
  c = command("import-votes", _import_votes, "import votes (JSONL: item, rater, vote)")
  c.add_argument("file")
  c = command("serve", _serve, "serve the raters' pages")
  c.add_argument("--port", type=int, default=8080)
  c.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for every interface)")
  command("progress", _progress, "votes cast per rater")
  c = command("report", _report, "win rates, agreement, position bias; report.json and win_rates.png")
  c.add_argument("--out_dir", default=None, help="where report.json and the PNG go (default: beside --db)")
  c.add_argument("--json", action="store_true", help="print the report as JSON")
  c.add_argument("--seed", type=int, default=0, help="bootstrap seed")
  c = command("export-pairs", _export, "chosen/rejected JSONL from the preference majorities")
  c.add_argument("--out", required=True)
  c.add_argument("--min_votes", type=int, default=1, help="votes an item needs to be exported")
  c.add_argument("--min_agreement", type=float, default=0.0, help="share of votes the winner needs")
  return p


def main(argv: list[str] | None = None) -> None:
  args = parser().parse_args(argv)
  try:
    args.fn(args)
  except KeyboardInterrupt:
    sys.exit(130)
  except (ValueError, OSError, LookupError, sqlite3.Error) as e:
    if os.environ.get("XY_JAX_TRACEBACK"):
      raise
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, OSError) and e.filename and e.strerror:
      text = f"{e.filename}: {e.strerror}"
    print(f"error: {text}", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
  main()
