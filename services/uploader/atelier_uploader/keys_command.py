"""`atelier keys create|list|revoke`: an operator's tool, run where the object store's credentials are.

Also `python -m atelier_uploader.keys_command ...` inside the uploader image.
"""

import argparse
import asyncio
import sys

from atelier_shared import AtelierError, AtelierSettings, BrandBook, ObjectStore
from atelier_uploader.keys import ADMIN, KeyStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier keys", description="API keys (settings from ATELIER_* variables)")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once and never stored")
    whose = create.add_mutually_exclusive_group(required=True)
    whose.add_argument("--brand", help="the brand the key acts for")
    whose.add_argument("--admin", action="store_true", help="an operator's key: every brand")
    create.add_argument("--label", default="", help="a note, e.g. who holds it")
    listing = actions.add_parser("list", help="keys in force (ids, brands, labels; never secrets)")
    listing.add_argument("--brand")
    revoke = actions.add_parser("revoke", help="revoke a key by id (refused within ATELIER_KEY_REFRESH_S)")
    revoke.add_argument("key_id")
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = AtelierSettings()  # type: ignore[call-arg]  # From ATELIER_* variables.
    store = ObjectStore(settings)
    await store.ensure_buckets([settings.bucket_keys])
    keys = KeyStore(store, settings.bucket_keys)
    if args.action == "create":
        if not args.admin:
            BrandBook.load(settings.brands_dir).get(args.brand)  # UnknownBrand for a typo
        record, key = await keys.create(ADMIN if args.admin else args.brand, args.label)
        print(
            f"created key {record.key_id} for {'every brand (admin)' if record.admin else record.brand}",
            file=sys.stderr,
        )
        print(key)
        return 0
    if args.action == "list":
        for record in await keys.records():
            if args.brand in (None, record.brand):
                print(f"{record.key_id}  {record.brand:20}  {record.created_at}  {record.label}")
        return 0
    if await keys.revoke(args.key_id):
        print(f"revoked {args.key_id}", file=sys.stderr)
        return 0
    print(f"no key {args.key_id!r} in force", file=sys.stderr)
    return 1


def keys(argv: list[str]) -> int:
    """`atelier keys`: create, list and revoke API keys."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except AtelierError as exc:
        print(f"atelier keys: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(keys(sys.argv[1:]))
