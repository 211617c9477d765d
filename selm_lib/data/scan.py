"""Check a corpus download before running anything.

    python -m selm_lib.data.scan scan NAME ROOT --out MANIFEST.csv

prints the per-label counts and the quarantine list and writes the manifest CSV.

    python -m selm_lib.data.scan extract NAME ROOT

writes the wav files a corpus distributed in another form needs (RESD: the audio stored in its
parquet files) into ROOT, for a later scan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selm_lib.data.corpora.base import CorpusLayoutError, layout_error
from selm_lib.data.corpora.registry import SCANNERS, label_counts, quarantine_list, scan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selm_lib.data.scan",
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
    extractable = sorted(name for name, scanner in SCANNERS.items() if scanner.extract)
    extract_cmd = commands.add_parser(
        "extract", help="write the wav files a corpus needs (" + ", ".join(extractable) + ")"
    )
    extract_cmd.add_argument("name", choices=extractable, help="corpus scanner")
    extract_cmd.add_argument("root", help="the corpus folder, in its distributed layout")
    extract_cmd.add_argument(
        "--overwrite", action="store_true", help="rewrite wav files that already exist"
    )
    args = parser.parse_args(argv)
    if args.command == "extract":
        return extract(args.name, Path(args.root), overwrite=args.overwrite)

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


def extract(name: str, root: Path, *, overwrite: bool = False) -> int:
    """Run a scanner's extraction after the same layout check a scan makes."""
    scanner = SCANNERS[name]
    key = f"curate.corpora.{name}.root (or the ROOT argument)"
    missing = scanner.missing_parts(root) if root.is_dir() else []
    if not root.is_dir() or missing:
        problem = "not found: " + "; ".join(missing) if missing else "the folder does not exist"
        print(f"error: {layout_error(scanner, root, problem, key)}", file=sys.stderr)
        return 2
    print(scanner.extract(root, overwrite=overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
