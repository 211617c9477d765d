"""Check a corpus download before running anything.

    python -m selm_lib.corpora scan NAME ROOT --out MANIFEST.csv

prints the per-label counts and the quarantine list and writes the manifest CSV.
"""

from __future__ import annotations

import argparse
import sys

from selm_lib.corpora import SCANNERS, CorpusLayoutError, label_counts, quarantine_list, scan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.corpora",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    scan_cmd = commands.add_parser("scan", help="scan a corpus root into a manifest CSV")
    scan_cmd.add_argument("name", choices=sorted(SCANNERS), help="corpus scanner")
    scan_cmd.add_argument("root", help="the corpus folder, in its distributed layout")
    scan_cmd.add_argument("--out", help="manifest CSV to write")
    scan_cmd.add_argument("--include-song", action="store_true", help="RAVDESS: also the song set")
    scan_cmd.add_argument("--min-duration", type=float, default=0.2, help="seconds (default 0.2)")
    scan_cmd.add_argument("--silence-dbfs", type=float, default=-60.0, help="default -60")
    args = parser.parse_args(argv)

    try:
        manifest = scan(
            args.name,
            args.root,
            options={"include_song": args.include_song},
            min_duration_s=args.min_duration,
            silence_dbfs=args.silence_dbfs,
            params_key=f"curate.corpora.{args.name}.root (or the ROOT argument)",
        )
    except CorpusLayoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = label_counts(manifest)
    print(
        f"{SCANNERS[args.name].title}: {len(manifest)} files, "
        f"{int(counts['usable'].sum())} usable, {int(counts['quarantined'].sum())} quarantined"
    )
    print(counts.to_string(index=False))
    bad = quarantine_list(manifest)
    print(f"\nquarantine ({len(bad)}):")
    print(bad.to_string(index=False) if len(bad) else "  (none)")
    if args.out:
        manifest.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
