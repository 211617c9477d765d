"""``python -m selm_lib.params``: the parameter profiles from the command line.

    python -m selm_lib.params show --profile paper   # the resolved parameters, as YAML
    python -m selm_lib.params use paper              # write the profile into params.yaml
    python -m selm_lib.params diff [--profile paper] # where params.yaml departs from a profile
    python -m selm_lib.params table                  # the default-vs-paper table (Markdown)

``--params PATH`` names another params file (default: the project's params.yaml). Profiles are
defined in ``selm_lib/config/profiles.yaml`` (:mod:`selm_lib.config.profiles`).
"""

from __future__ import annotations

import argparse
import sys

import yaml

from selm_lib.config import profiles
from selm_lib.config.params import ParamsError, load_params, project_root, validate


def markdown_table() -> str:
    """Each key where the embedded default departs from the papers, and the value that restores
    the paper (``use paper`` restores them all)."""
    rows = [
        "| key | default | paper | source |",
        "|---|---|---|---|",
    ]
    for key, entry in profiles.table().items():
        if profiles._same(entry["default"], entry["paper"]):
            continue
        default, paper = (profiles._text(entry[c]) for c in ("default", "paper"))
        rows.append(f"| `{key}` | `{default}` | `{paper}` | {entry['source']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selm_lib.params", description=__doc__)
    parser.add_argument("--params", default=None, help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the resolved parameters of a profile as YAML")
    show.add_argument("--profile", required=True, choices=sorted(profiles.COLUMN_OF))
    use = sub.add_parser("use", help="write a profile's values into the params file")
    use.add_argument("profile", choices=sorted(profiles.COLUMN_OF))
    diff = sub.add_parser("diff", help="keys where the params file departs from a profile")
    diff.add_argument("--profile", default=None, help="default: the file's common.profile")
    sub.add_parser("table", help="the default-vs-paper table, as Markdown")
    args = parser.parse_args(argv)
    path = args.params or str(project_root() / "params.yaml")
    try:
        if args.command == "table":
            print(markdown_table())
            return 0
        params = load_params(path)
        if args.command == "show":
            resolved = validate(profiles.resolve(params, args.profile), source=path)
            print(yaml.safe_dump(resolved, sort_keys=False, width=100), end="")
        elif args.command == "use":
            changed = profiles.apply_profile(path, args.profile)
            load_params(path)  # the result must still validate
            print(f"{path}: profile {args.profile}; {len(changed)} keys changed")
            for key in changed:
                print(f"  {key}")
        else:
            profile = args.profile or params["common"]["profile"]
            found = profiles.departures(params, profile)
            print(f"{path}: {len(found)} departures from profile {profile}")
            for d in found:
                print(f"  {d.key}: {d.value!r} ({profile}: {d.expected!r}; {d.source})")
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
