"""Assembling a rule set for the ``waf`` plugin: host settings, setup, rules, exclusions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from waf.rules import RuleSet, compile_rules
from waf.seclang import Directive, parse_file, parse_text

# The host configuration every rule set runs on: what ModSecurity's and
# Coraza's recommended configs establish before CRS loads (body processors
# chosen by Content-Type, parse failures refused), in Bastion's own words.
HOST_BASE = """
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\\+|/)|text/)xml" \\
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" \\
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/[a-z0-9.-]+[+]json" \\
    "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" \\
    "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body',\\
    logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \\
    "id:200003,phase:2,t:none,log,deny,status:400,\\
    msg:'Multipart request body failed strict validation'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \\
    "id:200004,phase:2,t:none,log,deny,\
    msg:'Multipart parser detected a possible unmatched boundary'"
"""

# How CRS's own regression suite expects the engine under test to be set up
# (its README's setup rule and the log marker rule; see waf/replay.py).
CRS_TEST_SETUP = """
SecAction "id:900005,phase:1,nolog,pass,t:none,ctl:ruleEngine=DetectionOnly,\\
    ctl:ruleRemoveById=910000,setvar:tx.blocking_paranoia_level=4,\\
    setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,\\
    setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,\\
    setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"
SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" \\
    "id:999999,phase:1,pass,t:none,log,msg:'X-CRS-Test %{MATCHED_VAR}',ctl:ruleRemoveById=1-999999"
"""


# Bastion's own rule set: the repository's rules/ directory (see rules/README.md),
# or where $BASTION_RULES points (an installed copy, as the Docker image has).
BUILTIN_RULES = Path(os.environ.get("BASTION_RULES")
                     or Path(__file__).resolve().parent.parent / "rules")


def builtin_rule_files() -> list[Path]:
    """Bastion's rule files in load order (name order)."""
    files = sorted(BUILTIN_RULES.glob("*.conf"))
    if not files:
        raise ValueError(f"Bastion's rule set is missing: no *.conf in {BUILTIN_RULES}")
    return files


def crs_directives(crs_dir: str | Path) -> list[Directive]:
    """CRS as its authors ship it: the example setup file, then every rule file."""
    root = Path(crs_dir)
    # A deployment's own crs-setup.conf wins over the shipped example.
    setup = root / "crs-setup.conf"
    if not setup.exists():
        setup = root / "crs-setup.conf.example"
    rules = sorted((root / "rules").glob("*.conf"))
    if not setup.exists() or not rules:
        raise ValueError(f"{root} does not look like a CRS directory "
                         "(crs-setup.conf.example and rules/*.conf)")
    directives = parse_file(setup)
    for f in rules:
        directives.extend(parse_file(f))
    return directives


def build_ruleset(*, engine: str, paranoia: int | None, inline: str = "",
                  crs: str | Path | None = None, files: Sequence[Path] = (),
                  exclusions: str = "", response_body: bool = False,
                  response_mime_types: tuple[str, ...] = (),
                  base_dir: Path | None = None) -> RuleSet:
    """Host base, engine mode, user directives, paranoia, rule sets, exclusions."""
    head = HOST_BASE + f"\nSecRuleEngine {engine}\n"
    head += f"SecResponseBodyAccess {'On' if response_body else 'Off'}\n"
    head += "SecResponseBodyMimeTypesClear\n"
    if response_mime_types:
        head += "SecResponseBodyMimeType " + " ".join(response_mime_types) + "\n"
    directives = parse_text(head, "<bastion host config>", base_dir)
    if inline:
        directives += parse_text(inline, "<directives>", base_dir)
    if paranoia is not None and "blocking_paranoia_level" not in inline:
        directives += parse_text(
            f'SecAction "id:900000,phase:1,pass,t:none,nolog,'
            f'setvar:tx.blocking_paranoia_level={paranoia}"', "<paranoia>", base_dir)
    if crs is not None:
        directives += crs_directives(crs)
    for f in files:
        directives += parse_file(f)
    if exclusions:
        directives += parse_text(exclusions, "<exclusions>", base_dir)
    return compile_rules(directives)


__all__ = ["BUILTIN_RULES", "CRS_TEST_SETUP", "HOST_BASE", "build_ruleset",
           "builtin_rule_files", "crs_directives"]
