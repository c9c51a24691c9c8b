"""Hyperwallet programs and the shared ``hyperwallet`` section of the connector configuration.

A marketplace may pay through several Hyperwallet programs (one per region, say). Each shop names
its program in the Mirakl field ``hw-program``; each program has

* a **users** program token (``prg-…``): users, bank accounts, stakeholders are created in it;
* a **payments** program token: the program holding the funds, used for ``/payments``;
* optionally the operator's own bank account token (``trm-…``) receiving the commission;
* an *ignored* flag: shops of an ignored program, and their invoices, are left alone.

Two spellings are accepted, checked when a task starts so that a mistake fails the first task
with a message naming the key (the incumbent crashed on the first shop, issue #6)::

    "hyperwallet": {"programs": [
        {"name": "EUROPE", "user_token": "prg-1", "payment_token": "prg-2",
         "bank_account_token": "trm-9"},
        {"name": "OTHER", "ignored": true}]}

    "hyperwallet": {"program_names": "EUROPE,OTHER", "program_user_tokens": "prg-1,",
                    "program_payment_tokens": "prg-2,", "program_bank_account_tokens": "trm-9,",
                    "ignored_programs": "OTHER"}

The second mirrors the incumbent's ``PAYPAL_HYPERWALLET_PROGRAMS_*`` variables, but is split
the careful way: empty entries are kept (``"prg-1,"`` has two entries) and blanks are stripped,
where Java's ``split`` dropped trailing empties and made the lists disagree in length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import refuse_unknown

SECTION = "hyperwallet"
_LIST_KEYS = (
    "program_names",
    "program_user_tokens",
    "program_payment_tokens",
    "program_bank_account_tokens",
)
_KNOWN_KEYS = {
    "programs",
    *_LIST_KEYS,
    "ignored_programs",
    "root_token",
    "max_item_retries",
    "item_retry_delay_minutes",
    "extraction_max_days",
}
_PROGRAM_KEYS = {"name", "user_token", "payment_token", "bank_account_token", "ignored"}


@dataclass(frozen=True)
class Program:
    """One configured program (tokens may be empty for an ignored program)."""

    name: str
    user_token: str | None
    payment_token: str | None
    bank_account_token: str | None = None
    ignored: bool = False


@dataclass(frozen=True)
class HyperwalletSettings:
    """The shared ``hyperwallet`` section: programs, retry budget, extraction window.

    :param max_item_retries: a failed shop/invoice is retried this many times, then one e-mail.
    :param item_retry_delay: the n-th retry waits n × this after the previous failure.
    :param extraction_max_days: an extract never looks further back than this many days.
    """

    programs: tuple[Program, ...]
    root_token: str | None = None
    max_item_retries: int = 5
    item_retry_delay: timedelta = timedelta(minutes=30)
    extraction_max_days: int = 30

    def program(self, name: str | None) -> Program | None:
        """The program called ``name`` (exact match), or ``None``."""
        for program in self.programs:
            if program.name == name:
                return program
        return None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.programs]

    @property
    def active_programs(self) -> list[Program]:
        return [p for p in self.programs if not p.ignored]

    @property
    def health_token(self) -> str:
        """The program token used to check the credentials (root token, else the first)."""
        if self.root_token:
            return self.root_token
        return next(p.user_token for p in self.active_programs if p.user_token)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> HyperwalletSettings:
        """Parse ``config["hyperwallet"]``; :class:`ConfigurationError` names the bad key."""
        section = (config or {}).get(SECTION)
        if section is None:
            raise ConfigurationError(
                f"the connector configuration has no '{SECTION}' section: configure the "
                "Hyperwallet programs (names and program tokens)"
            )
        if not isinstance(section, Mapping):
            raise ConfigurationError(f"{SECTION} must be an object")
        refuse_unknown(section, _KNOWN_KEYS, SECTION)
        if "programs" in section and any(k in section for k in _LIST_KEYS):
            raise ConfigurationError(
                f"{SECTION}: give either 'programs' or the 'program_*' lists, not both"
            )
        if "programs" in section:
            raw = _programs_from_objects(section["programs"])
        else:
            raw = _programs_from_lists(section)
        ignored = _names(section.get("ignored_programs"), f"{SECTION}.ignored_programs")
        programs = _validate(raw, ignored)
        root = section.get("root_token") or None
        if root is not None:
            _check_token(root, "prg-", f"{SECTION}.root_token")
        return cls(
            programs=programs,
            root_token=root,
            max_item_retries=_int(section, "max_item_retries", 5, low=0),
            item_retry_delay=timedelta(
                minutes=_int(section, "item_retry_delay_minutes", 30, low=0)
            ),
            extraction_max_days=_int(section, "extraction_max_days", 30, low=1),
        )


def _programs_from_objects(value: Any) -> list[dict[str, Any]]:
    where = f"{SECTION}.programs"
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ConfigurationError(f"{where} must be a list of program objects")
    programs = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"{here} must be an object")
        refuse_unknown(item, _PROGRAM_KEYS, here)
        if "ignored" in item and not isinstance(item["ignored"], bool):
            raise ConfigurationError(f"{here}.ignored must be true or false")
        programs.append({**item, "_where": here})
    return programs


def _split(value: Any, where: str) -> list[str]:
    """``"a, b,"`` → ``["a", "b", ""]`` (empties kept, blanks stripped); lists pass through."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, Sequence) and all(isinstance(v, str | None) for v in value):
        return [(v or "").strip() for v in value]
    raise ConfigurationError(f"{where} must be a comma-separated string or a list of strings")


def _programs_from_lists(section: Mapping[str, Any]) -> list[dict[str, Any]]:
    lists = {key: _split(section.get(key), f"{SECTION}.{key}") for key in _LIST_KEYS}
    names = lists["program_names"]
    if not names or names == [""]:
        raise ConfigurationError(
            f"{SECTION}: no programs configured (give 'programs' or 'program_names')"
        )
    # A trailing comma after the last name is not a program (the incumbent removed empty names).
    while names and names[-1] == "":
        names.pop()
    for key in ("program_user_tokens", "program_payment_tokens"):
        if len(lists[key]) < len(names):
            raise ConfigurationError(
                f"{SECTION}.{key} has {len(lists[key])} entries for {len(names)} program(s) "
                f"({', '.join(names)}): give one token per program, an empty entry for an "
                "ignored one"
            )
    bank_tokens = lists["program_bank_account_tokens"] or [""] * len(names)
    if len(bank_tokens) < len(names):
        raise ConfigurationError(
            f"{SECTION}.program_bank_account_tokens has {len(bank_tokens)} entries for "
            f"{len(names)} program(s): give one per program (empty entries allowed)"
        )
    return [
        {
            "name": name,
            "user_token": lists["program_user_tokens"][i],
            "payment_token": lists["program_payment_tokens"][i],
            "bank_account_token": bank_tokens[i],
            "_where": f"{SECTION}.program_names[{i}] ({name or 'empty'})",
        }
        for i, name in enumerate(names)
    ]


def _names(value: Any, where: str) -> set[str]:
    return {name for name in _split(value, where) if name}


def _validate(raw: list[dict[str, Any]], ignored: set[str]) -> tuple[Program, ...]:
    if not raw:
        raise ConfigurationError(f"{SECTION}.programs is empty: configure at least one program")
    programs: list[Program] = []
    seen: set[str] = set()
    for item in raw:
        where = item["_where"]
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"{where}: the program name is missing")
        name = name.strip()
        if name in seen:
            raise ConfigurationError(f"{where}: program {name!r} is configured twice")
        seen.add(name)
        is_ignored = bool(item.get("ignored")) or name in ignored
        tokens = {}
        for key, prefix in (("user_token", "prg-"), ("payment_token", "prg-")):
            token = (item.get(key) or "").strip() or None
            if token is None and not is_ignored:
                raise ConfigurationError(f"{where}: {key} is required for program {name!r}")
            if token is not None:
                _check_token(token, prefix, f"{where}.{key}")
            tokens[key] = token
        bank = (item.get("bank_account_token") or "").strip() or None
        if bank is not None:
            _check_token(bank, "trm-", f"{where}.bank_account_token")
        programs.append(
            Program(name, tokens["user_token"], tokens["payment_token"], bank, is_ignored)
        )
    unknown = ignored - seen
    if unknown:
        raise ConfigurationError(
            f"{SECTION}.ignored_programs names unknown program(s): {', '.join(sorted(unknown))}"
        )
    if not any(not p.ignored for p in programs):
        raise ConfigurationError(f"{SECTION}: every program is ignored; nothing would run")
    return tuple(programs)


def _check_token(token: Any, prefix: str, where: str) -> None:
    if not isinstance(token, str) or not token.startswith(prefix) or len(token) <= len(prefix):
        kind = "program token" if prefix == "prg-" else "bank account token"
        raise ConfigurationError(f"{where} must be a {kind} ({prefix}...), got {token!r}")


def _int(section: Mapping[str, Any], name: str, default: int, *, low: int) -> int:
    value = section.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigurationError(f"{SECTION}.{name} must be an integer ≥ {low}, got {value!r}")
    return value
