"""`plinth user ...`: the accounts from a terminal on the server (webapp/cli.py wires it in).

    plinth user add ana@shop.example --owner --name "Ana"   # asks for the password twice
    echo "$PASS" | plinth user add bob@shop.example --password-stdin
    plinth user list
    plinth user passwd ana@shop.example
    plinth user remove bob@shop.example
"""

from __future__ import annotations

import argparse
import getpass
import sys

from . import accounts, settings, signin


def add_parser(sub) -> None:
    user = sub.add_parser("user", help="add, list, remove merchant accounts or change a password")
    cmds = user.add_subparsers(dest="user_command", required=True, metavar="{add,list,remove,passwd}")
    add = cmds.add_parser("add", help="create an account (the first one should be the --owner)")
    add.add_argument("email")
    add.add_argument("--owner", action="store_true", help="the owner runs the server and may see every library")
    add.add_argument("--name", default="", help="how the pages greet them")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    cmds.add_parser("list", help="list the accounts")
    remove = cmds.add_parser("remove", help="delete an account (its models stay, for the owner)")
    remove.add_argument("email")
    passwd = cmds.add_parser("passwd", help="set a new password (signs that account out everywhere)")
    passwd.add_argument("email")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise accounts.AccountError("The two passwords are not the same. Run the command again.")
    return first


def _found(data, email: str) -> accounts.User:
    user = accounts.find_user(data, email)
    if user is None:
        raise accounts.AccountError(f"There is no account for {email.strip()}. See: plinth user list")
    return user


def run(args: argparse.Namespace) -> int:
    """Raises accounts.AccountError (pipeline's CLI runner prints its one line and exits non-zero)."""
    data = settings.data_dir()
    command = args.user_command
    if command == "add":
        accounts.clean_email(args.email)  # a typo is reported before the password is asked for
        role = accounts.Role.OWNER if args.owner else accounts.Role.MERCHANT
        user = accounts.add_user(data, args.email, _password(args), role=role, name=args.name)
        signin.clear_setup_code(data)
        print(f"Added {user.email} ({user.role.value}). They can sign in at the server's /login page.")
    elif command == "list":
        users = accounts.list_users(data)
        if not users:
            print("No accounts yet. Create the owner: plinth user add you@example.com --owner")
        for user in users:
            print(f"{user.email}\t{user.role.value}\t{user.name}")
    elif command == "remove":
        user = _found(data, args.email)
        accounts.remove_user(data, user.id)
        print(f"Removed {user.email}. Their models stay in the owner's library.")
    elif command == "passwd":
        user = _found(data, args.email)
        accounts.set_password(data, user.id, _password(args))
        print(f"New password set for {user.email}; they were signed out everywhere.")
    return 0
