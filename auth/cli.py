"""``bastion hash-password``: the Argon2id hash a basic-auth credential stores."""

from __future__ import annotations

import argparse
import getpass
import sys


def add_hash_password_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
                              ) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "hash-password", help="print the Argon2id hash of a password for a basic-auth credential",
        description="Read a password (prompted twice on a terminal, else one line from stdin) "
                    "and print its Argon2id hash, for `password_hash:` in a basic-auth "
                    "credential.")
    p.set_defaults(func=_cmd_hash_password)
    return p


def _cmd_hash_password(args: argparse.Namespace) -> int:
    from auth.basic_auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("bastion: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("bastion: empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
