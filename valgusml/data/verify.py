"""`valgusml verify DATA...`: the full check of dataset folders (every shard's sha256, every sequence's digest,
the fingerprint recomputed from the data; see `valgusml.data.format`). Exit status 0 when all are intact, 1 when
a folder is corrupt or unreadable (one line per problem on stderr)."""

from __future__ import annotations

import argparse
import sys

from valgusml.data.format import open_dataset
from valgusml.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="valgusml verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", metavar="DATA", nargs="+", help="dataset folder (holds dataset.json)")
    args = parser.parse_args(argv)
    failed = 0
    for root in args.data:
        try:
            ds = open_dataset(root, verify="none")
            problems = ds.verify()
        except InputError as exc:
            problems = [str(exc)]
        if problems:
            failed += 1
            for problem in problems:
                print(f"valgusml verify: {root}: {problem}", file=sys.stderr)
        else:
            print(f"{root}: ok ({len(ds)} sequences, {len(ds.header['shards'])} shards, fingerprint {ds.fingerprint[:16]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
