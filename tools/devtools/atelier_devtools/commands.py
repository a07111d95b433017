"""The developer tools' `atelier` commands: local, service, provision."""

import argparse
import os
import sys

# Each service's module, run as `python -m <module>`.
SERVICES = {
    "uploader": "atelier_uploader",
    "tagger": "atelier_tagger",
    "router": "atelier_router",
    "stylizer": "atelier_stylizer",
    "exporter": "atelier_exporter",
    "status": "atelier_status",
}


def local(argv: list[str]) -> int:
    """`atelier local`: start everything on this machine and push the sample images through."""
    parser = argparse.ArgumentParser(prog="atelier local", description=local.__doc__)
    parser.add_argument("--demo", action="store_true", help="exit after the samples (non-zero if any failed)")
    parser.add_argument("--api-port", type=int, default=8080, help="another free one if taken; 0: any")
    parser.add_argument("--s3-port", type=int, default=9000, help="another free one if taken; 0: any")
    parser.add_argument("--brands", default="deploy/brands", help="folder of brand guidelines")
    parser.add_argument("--samples", help="folder of images to push through instead of the generated samples")
    parser.add_argument("--out", default="out", help="where renditions are saved")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the samples")
    from atelier_devtools.run_local import run_local

    return run_local(parser.parse_args(argv))


def service(argv: list[str]) -> int:
    """`atelier service NAME`: run one service in the foreground (settings from ATELIER_* variables)."""
    parser = argparse.ArgumentParser(prog="atelier service", description=service.__doc__)
    parser.add_argument("name", choices=sorted(SERVICES))
    parser.add_argument("--pool", choices=["quality", "fast"], help="stylizer pool (ATELIER_STYLIZER_POOL)")
    args = parser.parse_args(argv)
    if args.pool:
        os.environ["ATELIER_STYLIZER_POOL"] = args.pool
    os.execv(sys.executable, [sys.executable, "-m", SERVICES[args.name]])


def provision(argv: list[str]) -> int:
    """`atelier provision`: create topics and buckets on real Kafka and MinIO (a deploy step)."""
    from atelier_shared.provision import main

    main(argv)
    return 0
