"""What every scenario of the simulator shares: its settings, its model, its report.

The model keeps each simulated player's balances in exact minor units and changes them only
when the simulator *knows* an operation's outcome (an answer, or the outcome learned by a
lookup). Anything the server reports — a balance in an answer, a looked-up transfer, the final
balances — is compared with the model; a difference is a *mismatch*. A *violation* is a
protocol promise broken without a balance difference (e.g. a repeated request answered
differently). Either makes the run fail.

Randomness comes from one seed: each player has its own generator derived from it, so the
decisions of a run (amounts, faults) do not depend on how its concurrent tasks interleave.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gamewallet.clients.simulator.faults import Fault, FaultSlot, WireStats
from gamewallet.core.money import format_minor

__all__ = ["Credentials", "PlayerModel", "Report", "SimConfig", "Simulation"]

PROTOCOLS = ("seamless", "hrg", "jdb")
#: Faults the transport injects (``reorder`` is played by the scenarios).
WIRE_FAULTS = (Fault.DROP, Fault.DUP, Fault.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Whatever the protocol needs to call the server (unused fields stay None)."""

    username: str | None = None  # seamless Basic user
    password: str | None = None
    client_id: str | None = None  # HRG Basic user
    client_secret: str | None = None
    agent: str | None = None  # HRG agentId
    dc: str | None = None  # JDB domain
    parent: str | None = None
    key: str | None = None
    iv: str | None = None


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One run: where, who, how much, which faults. Every field bounds the run."""

    protocol: str
    url: str
    credentials: Credentials
    players: int = 5
    rounds: int = 20
    faults: frozenset[Fault] = frozenset()
    #: Chance that one call carries a fault (when faults are enabled).
    fault_rate: float = 0.15
    seed: int | None = None
    concurrency: int = 4
    #: Timeout of one HTTP call.
    timeout_s: float = 10.0
    #: The whole run stops (and fails) after this long.
    deadline_s: float = 600.0
    #: Seamless: session tokens to play with (one per player) ...
    tokens: tuple[str, ...] = ()
    #: ... or our own database, to create players and sessions through the service layer.
    setup_db: str | None = None
    #: Seamless players created through ``setup_db`` use this currency.
    currency: str = "XAG"
    #: Where the HRG/JDB transfer records are kept (memory://, sqlite:///…, postgresql://…).
    records_db: str = "memory://"
    #: Seamless: how long a call answered ``100 Other error`` is repeated (same id) before it
    #: counts as a refusal; 0 = never repeated.
    other_error_retry_s: float = 30.0

    def __post_init__(self) -> None:
        assert self.protocol in PROTOCOLS
        assert self.players >= 1
        assert self.rounds >= 0
        assert self.concurrency >= 1
        assert self.other_error_retry_s >= 0
        assert 0.0 <= self.fault_rate <= 1.0
        assert self.timeout_s > 0
        assert self.deadline_s > 0


@dataclass
class PlayerModel:
    """The simulator's belief about one player (minor units)."""

    index: int
    key: str  # HRG userId, JDB uid, seamless player id
    rng: random.Random
    cash_minor: int = 0
    free_minor: int = 0
    token: str = ""  # seamless session token
    currency: str = ""
    #: Operations whose outcome is being learned later: the model is unsure meanwhile.
    in_doubt: int = 0
    #: Set when an outcome could not be learned at all: the model no longer knows this player.
    unknown: bool = False

    @property
    def known(self) -> bool:
        """Whether the model can vouch for this player's balances right now."""
        return not self.unknown and self.in_doubt == 0


@dataclass
class Report:
    """What a run did and found."""

    protocol: str
    url: str
    players: int
    rounds: int
    seed: int
    operations: int = 0  # logical operations the scenario played
    refusals: int = 0  # refusals the model predicted (insufficient funds, 110, 6901…)
    other_refusals: Counter[str] = field(default_factory=Counter)  # not predicted, no mismatch
    recoveries: int = 0  # operations whose outcome had to be learned or retried
    other_error_retries: int = 0  # seamless calls repeated after a 100 Other error
    unresolved: int = 0  # operations whose outcome is still unknown at the end
    mismatches: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    wire: WireStats = field(default_factory=WireStats)
    duration_s: float = 0.0
    error: str | None = None  # the run could not be completed (setup, deadline)

    @property
    def ok(self) -> bool:
        """No mismatch, no violation, nothing unresolved, no error."""
        return not (self.mismatches or self.violations or self.unresolved or self.error)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON-ready document."""
        return {
            "ok": self.ok,
            "protocol": self.protocol,
            "url": self.url,
            "players": self.players,
            "rounds": self.rounds,
            "seed": self.seed,
            "operations": self.operations,
            "calls": self.wire.requests,
            "faults": dict(sorted(self.wire.faults.items())),
            "refusals": self.refusals,
            "otherRefusals": dict(sorted(self.other_refusals.items())),
            "recoveries": self.recoveries,
            "otherErrorRetries": self.other_error_retries,
            "unresolved": self.unresolved,
            "mismatches": len(self.mismatches),
            "mismatchDetails": self.mismatches[:100],
            "violations": len(self.violations),
            "violationDetails": self.violations[:100],
            "durationS": round(self.duration_s, 3),
            "error": self.error,
        }

    def as_text(self) -> str:
        """The report for a terminal."""
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.wire.faults.items())) or "none"
        others = ", ".join(f"{k} x{v}" for k, v in sorted(self.other_refusals.items()))
        head = (
            f"simulate {self.protocol} against {self.url}: "
            f"{self.players} players x {self.rounds} rounds, seed {self.seed}"
        )
        wire = f"  operations {self.operations}, HTTP calls {self.wire.requests}, faults: {faults}"
        outcomes = (
            f"  predicted refusals {self.refusals}, recoveries {self.recoveries}, "
            f"unresolved {self.unresolved}"
        )
        if others:
            outcomes += f", other refusals: {others}"
        found = (
            f"  mismatches {len(self.mismatches)}, violations {len(self.violations)}, "
            f"{self.duration_s:.1f} s"
        )
        lines = [head, wire, outcomes, found]
        lines += [f"  MISMATCH {m}" for m in self.mismatches[:50]]
        lines += [f"  VIOLATION {v}" for v in self.violations[:50]]
        if self.error:
            lines.append(f"  ERROR {self.error}")
        lines.append("  result: OK" if self.ok else "  result: FAILED")
        return "\n".join(lines)


class Simulation:
    """Base of the scenarios: seeds, fault picking, comparisons."""

    def __init__(self, config: SimConfig, report: Report) -> None:
        self.config = config
        self.report = report
        self.seed = report.seed
        self.wire_faults = [f for f in WIRE_FAULTS if f in config.faults]
        self.reorder = Fault.REORDER in config.faults
        #: A per-run tag in every id we make, so that runs against one server never collide.
        self.tag = f"{int(time.time()) % 10**6:06d}{secrets.token_hex(3)}"

    def player_rng(self, index: int) -> random.Random:
        """The generator of player ``index`` (independent of scheduling)."""
        return random.Random(f"{self.seed}:{index}")  # noqa: S311 - simulation, not secrets

    def pick_fault(self, rng: random.Random) -> FaultSlot | None:
        """A wire fault for the next call, or None (most of the time)."""
        if not self.wire_faults or rng.random() >= self.config.fault_rate:
            return None
        fault = rng.choice(self.wire_faults)
        return FaultSlot(
            fault,
            concurrent=fault is Fault.DUP and rng.random() < 0.5,
            timeout_s=rng.uniform(0.0005, 0.02),
        )

    def wants_reorder(self, rng: random.Random) -> bool:
        """Whether this round plays a reordering fault."""
        return self.reorder and rng.random() < self.config.fault_rate

    def mismatch(self, player: PlayerModel | None, text: str) -> None:
        """Record a difference between the model and the server."""
        who = f"{player.key}: " if player is not None else ""
        self.report.mismatches.append(who + text)

    def violation(self, player: PlayerModel | None, text: str) -> None:
        """Record a broken protocol promise."""
        who = f"{player.key}: " if player is not None else ""
        self.report.violations.append(who + text)

    def compare(self, player: PlayerModel, what: str, server_minor: int, model_minor: int) -> None:
        """Mismatch unless the server's figure equals the model's."""
        if server_minor != model_minor and player.known:
            self.mismatch(
                player,
                f"{what}: server {format_minor(server_minor)}, model {format_minor(model_minor)}",
            )

    def compare_dup(self, player: PlayerModel, slot: FaultSlot | None, what: str) -> None:
        """A call sent twice must have been answered the same both times (an identical
        repeat replays the original answer)."""
        if slot is None or slot.first_answer is None or slot.second_answer is None:
            return
        if slot.first_answer != slot.second_answer:
            self.violation(
                player,
                f"{what} sent twice got two answers: {slot.first_answer[1][:120]!r} / "
                f"{slot.second_answer[1][:120]!r}",
            )

    @staticmethod
    def amount(rng: random.Random, low_minor: int, high_minor: int, step_minor: int) -> int:
        """A random amount in [low, high], a multiple of ``step_minor`` (decimal places)."""
        low = -(-low_minor // step_minor)
        high = high_minor // step_minor
        return rng.randint(low, max(low, high)) * step_minor
