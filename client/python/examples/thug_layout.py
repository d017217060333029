#!/usr/bin/env python3
"""Submit a file of URLs to tq and write each result as Thug lays out its
log directory:

    OUT/<md5(url)>/<YYYYMMDDHHMMSS>/analysis/json/analysis.json
    OUT/<md5(url)>/<YYYYMMDDHHMMSS>/<the files Thug saved>

Run from the build tree (the workers run Thug with
`--exec 'thug -F -Z -n {outdir} -u {useragent} {url}'`):

    PYTHONPATH=build/python python3 client/python/examples/thug_layout.py \\
        --broker tcp://broker.example:7070 --country IT,IN \\
        --user-agent winxpie60 urls.txt out/
"""

import argparse
import sys

import tq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", help="URL file, one per line ('#' comments)")
    parser.add_argument("out", help="directory for Thug's layout")
    parser.add_argument("--broker", help="broker endpoint (default $TQ_BROKER)")
    parser.add_argument("--country", default="generic", help="queues, e.g. IT,IN")
    parser.add_argument("--user-agent", help="Thug personality, e.g. winxpie60")
    parser.add_argument("--timeout", type=float, help="seconds to wait at most")
    args = parser.parse_args()

    with open(args.urls, encoding="utf-8") as f:
        urls = [s for s in (line.strip() for line in f) if s and not s.startswith("#")]
    options = {"user_agent": args.user_agent} if args.user_agent else {}

    failed = 0
    try:
        with tq.Client(args.broker) as client:
            receipt = client.submit(urls, args.country.split(","), options=options)
            for e in receipt.errors:
                print(f"refused: {urls[e.url_index]} ({e.queue}): {e.reason}", file=sys.stderr)
            print(f"batch {receipt.batch_id}: {receipt.held} tasks", file=sys.stderr)
            if receipt.held == 0:
                return 1
            # with_files: the files Thug saved come with each result.
            results = client.results(
                receipt.batch_id, timeout=args.timeout, with_files=True
            )
            for result in results:
                where = tq.write_result(args.out, result, layout="thug")
                print(f"{result.state:9} {result.queue:7} {result.url} -> {where}")
                if result.state != "done" or not result.ok:
                    failed += 1
                    print(f"  {result.error}", file=sys.stderr)
            p = results.progress
            print(f"{p.done} done, {p.dead} dead, {p.cancelled} cancelled", file=sys.stderr)
    except tq.TqError as e:
        print(f"tq: {e}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
