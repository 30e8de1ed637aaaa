"""``dpsynth ledger …``: create a ledger and register a dataset, change a cap, show the statements, verify
the chain and the seal, seal an older ledger."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from dpsynth.cli.arguments import Parser, ledger_option, number
from dpsynth.exceptions import ParameterError

__all__ = ["add_ledger", "parse_anchor", "print_statements", "run_ledger"]


def add_ledger(sub: Any) -> None:
    """Add ``dpsynth ledger`` and its subcommands to the subcommands ``sub``."""
    ledger = sub.add_parser("ledger", help="the privacy-budget ledger")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True, parser_class=Parser)
    create = lsub.add_parser("create", help="register a private dataset with its total budget")
    setcap = lsub.add_parser("set-cap", help="change a dataset's cap (the reason is recorded)")
    for p in (create, setcap):
        ledger_option(p)
        p.add_argument("--dataset", required=True)
        p.add_argument("--epsilon", type=number, required=True)
        p.add_argument("--delta", type=number, required=True)
    create.add_argument("--unit", default="row", help="privacy unit: row (default) or user:K")
    setcap.add_argument("--reason", required=True, help="why the cap changes (recorded in the ledger)")
    show = lsub.add_parser("show", help="caps, spending and entries per dataset, and whether the ledger verifies")
    verify = lsub.add_parser("verify", help="check the hash chain and the seal; print the head to copy aside; "
                                            "exit 1 at the first bad entry")
    seal = lsub.add_parser("seal", help="seal a ledger made by an older dpsynth: check its chain, make its key, "
                                        "key every entry")
    for p in (show, verify, seal):
        ledger_option(p)
    for p in (show, verify):
        p.add_argument("--json", action="store_true")
    show.add_argument("--dataset")
    verify.add_argument("--anchor", metavar="SEQ:HASH",
                        help="an earlier head (from ledger verify) that must still be in the chain: finds a ledger "
                             "put back to an earlier copy or replaced")


def parse_anchor(text: str | None) -> tuple[int, str] | None:
    """``--anchor SEQ:HASH`` as (entry number, lower-case hash), or None when it is not given."""
    if text is None:
        return None
    match = re.fullmatch(r"([1-9][0-9]{0,17}):([0-9a-fA-F]{64})", text.strip())
    if match is None:
        raise ParameterError("--anchor must be SEQ:HASH, an entry number and its 64-hex-digit hash as "
                             "'ledger verify' prints them")
    return int(match.group(1)), match.group(2).lower()


def run_ledger(args: argparse.Namespace) -> int:
    """Exit 0 done, 1 when ``verify`` or ``show`` finds the ledger tampered with, 2 bad input."""
    from dpsynth import _validation as check
    from dpsynth.privacy.budgets import ApproxDP
    from dpsynth.privacy.ledger import Ledger

    cmd = args.ledger_command
    anchor = parse_anchor(args.anchor) if cmd == "verify" else None  # bad input first, before opening anything
    if cmd in ("create", "set-cap"):
        budget = ApproxDP(check.positive_finite("epsilon", args.epsilon), check.open_unit("delta", args.delta))
    ledger = Ledger(args.ledger, create=cmd == "create")
    if cmd == "create":
        entry = ledger.create_dataset(args.dataset, budget, unit=args.unit)
        print(f"registered dataset {args.dataset!r}: cap epsilon={budget.epsilon:g}, delta={budget.delta:g}, "
              f"unit {args.unit} (entry {entry})")
        return 0
    if cmd == "set-cap":
        entry = ledger.set_cap(args.dataset, budget, reason=args.reason)
        print(f"cap of dataset {args.dataset!r} is now epsilon={budget.epsilon:g}, delta={budget.delta:g} "
              f"(entry {entry})")
        return 0
    if cmd == "seal":
        entries = ledger.seal()
        head = ledger.verify().head
        print(f"ledger sealed: {entries} entries keyed; head {head['seq']}:{head['hash']}")
        return 0
    if cmd == "verify":
        return _verify(ledger, anchor, as_json=args.json)
    return _show(ledger, args)


def _verify(ledger: Any, anchor: tuple[int, str] | None, *, as_json: bool) -> int:
    result = ledger.verify(anchor)
    head = f"{result.head['seq']}:{result.head['hash']}" if result.head else "none"
    if as_json:
        print(json.dumps(vars(result)))
    elif result.ok:
        seal = "hash chain and seal verified" if result.sealed else \
            "hash chain verified; NOT sealed (made by an older dpsynth: dpsynth ledger seal)"
        also = f"; anchor {anchor[0]} found" if anchor else ""
        print(f"ledger intact: {result.entries} entries, {seal}{also}")
        print(f"head (copy it aside; check later with --anchor): {head}")
    else:
        print(f"ledger TAMPERED: {result.problem}")
    return 0 if result.ok else 1


def _show(ledger: Any, args: argparse.Namespace) -> int:
    from dpsynth.privacy.ledger import LedgerError
    from dpsynth.privacy.redact import redact_url

    names = [args.dataset] if args.dataset else ledger.datasets()
    statements = [ledger.statement(name).to_dict() for name in names]
    try:
        result = ledger.verify()
        integrity: dict[str, Any] = {"checked": True, "ok": result.ok, "sealed": result.sealed,
                                     "problem": result.problem, "head": result.head}
    except LedgerError as exc:  # a sealed ledger whose key is not here: still shown, said unchecked
        integrity = {"checked": False, "reason": str(exc)}
    if args.json:
        print(json.dumps({"ledger": redact_url(args.ledger), "integrity": integrity, "datasets": statements}))
    else:
        print_statements(statements)
        if not integrity["checked"]:
            print(f"integrity NOT checked: {integrity['reason']}")
        elif not integrity["ok"]:
            print(f"integrity: TAMPERED: {integrity['problem']} (these figures cannot be trusted)")
        else:
            print(f"integrity: verified ({'sealed' if integrity['sealed'] else 'NOT sealed'}); head "
                  f"{integrity['head']['seq'] if integrity['head'] else 0}:"
                  f"{integrity['head']['hash'] if integrity['head'] else ''}")
    return 1 if integrity["checked"] and not integrity["ok"] else 0


def print_statements(statements: list[dict[str, Any]]) -> None:
    """The statements of ``ledger show``, in lines a person reads (no data, only accounting)."""
    if not statements:
        print("no datasets registered in this ledger")
    for st in statements:
        cap, spent, remaining = st["cap"], st["spent"], st["remaining"]
        additive = spent["additive_delta"]
        claimed = spent.get("additive_epsilon") or 0.0  # (ε, δ) claims of plug-in generators, taken as given
        print(f"dataset {st['dataset']!r} ({st['unit_description']})")
        after = " and claims" if claimed else ""
        print(f"  cap:       epsilon={cap['epsilon']:g}, delta={cap['delta']:g}  (rho={cap['rho']:.6g}"
              f"{f' after the additive delta{after} spent' if additive or claimed else ''})")
        composed = " in RDP" if spent.get("composition") == "rdp" else ""
        claims = f"claims epsilon={claimed:.4g} + " if claimed else ""
        print(f"  spent:     epsilon={spent['epsilon_tight']:.4g} at delta={spent['delta']:g} (tight{composed}, "
              f"{claims}rho={spent['rho']:.6g}, additive delta={additive:.3g}); plain sum of releases: "
              f"epsilon={spent['epsilon_plain_sum']:.4g}, delta={spent['delta_plain_sum']:.3g}")
        left = f", claim epsilon={remaining['additive_epsilon']:.4g}" if claimed else ""
        print(f"  remaining: rho={remaining['rho']:.6g}, additive delta={remaining['additive_delta']:.3g}{left}   "
              f"releases: {st['releases']} ({st['not_completed']} not completed)")
        for e in st["entries"]:
            extra = f" additive delta={e['additive_delta']:.3g}" if e.get("additive_delta") else ""
            claim_events = [c for c in e.get("events", []) if c.get("kind") == "approx_dp"]
            if claim_events:  # charged as given, before the generator read a row
                pairs = ", ".join(f"({c.get('epsilon', 0.0):g}, {c.get('epsilon_delta', 0.0):g})"
                                  for c in claim_events)
                extra += f" claim (epsilon, delta)={pairs}"
            elif e.get("additive_epsilon"):
                extra += f" claim epsilon={e['additive_epsilon']:g}"
            opt_ins = f"  opt-ins: {', '.join(e['opt_ins'])}" if e.get("opt_ins") else ""
            print(f"  #{e['id']:<6} {e['created_at'][:19]}  {e['synthesizer']:<6} epsilon={e['epsilon']:g} "
                  f"delta={e['delta']:g} rho={e['rho']:.6g}{extra}  {e['status']:<9} dpsynth "
                  f"{e['dpsynth_version']}  input sha256 {str(e['input_sha256'])[:12]}{opt_ins}")
