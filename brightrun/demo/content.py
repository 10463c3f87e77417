"""The hand-written demo conversations: one text file each under ``conversations/``, parsed here.

A file is a header of ``name: value`` lines, a blank line, then the turns. Each turn starts with a line
``[user: <emotion> <intensity>]`` or ``[assistant: <emotion> <intensity> / <secondary emotion>]`` (the secondary
emotion is optional) and runs to the next such line; blank lines inside a turn are kept as paragraph breaks. An
``[edit N]`` block after the turns holds the text a review step ``edit turn=N`` puts into turn N.

Header names: ``title`` (the idempotency key, unique in the set), ``persona``, ``arc``, ``topic`` (scaffolding
keys), ``session_context``, ``conversation_phase``, ``expected_outcome`` and any number of ``review`` lines, applied
in order: ``review: <action> [score=N] [reasons=a,b] [turn=N] :: comment``. Actions are those of
``conversations.services.review`` plus ``edit``; ``resubmit`` and ``edit`` are done by the owner, the others by
the demo reviewer.

The text was written by the team; nothing here is generated. Parsing is pure and checks the shape (alternating
roles starting with the client, intensities in 0..1, known review actions) so a broken file fails loudly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CONTENT_DIR = Path(__file__).resolve().parent / "conversations"

REVIEW_ACTIONS = frozenset({"approve", "reject", "needs_revision", "retract", "archive", "resubmit", "edit"})
HEADER_FIELDS = frozenset(
    {"title", "persona", "arc", "topic", "session_context", "conversation_phase", "expected_outcome", "review"}
)
REQUIRED_FIELDS = ("title", "persona", "arc", "topic", "session_context", "conversation_phase", "expected_outcome")

_TURN = re.compile(r"^\[(user|assistant):\s*([a-z_]+)\s+([0-9.]+)(?:\s*/\s*([a-z_]+))?\]$")
_EDIT = re.compile(r"^\[edit (\d+)\]$")
_HEADER = re.compile(r"^([a-z_]+):\s*(.*)$")


@dataclass(frozen=True)
class DemoTurn:
    role: str
    content: str
    primary_emotion: str
    intensity: float
    secondary_emotion: str = ""


@dataclass(frozen=True)
class ReviewStep:
    action: str
    score: float | None = None
    reasons: tuple[str, ...] = ()
    turn: int | None = None
    comment: str = ""


@dataclass(frozen=True)
class DemoConversation:
    """One hand-written conversation and the review history it gets in the demo workspace."""

    slug: str
    title: str
    persona: str
    arc: str
    topic: str
    metadata: dict[str, str]
    turns: tuple[DemoTurn, ...]
    reviews: tuple[ReviewStep, ...] = ()
    edits: dict[int, str] = field(default_factory=dict)

    @property
    def final_status(self) -> str:
        """The review status the conversation ends in once every step is applied."""
        from conversations.services.review import ACTION_TARGETS

        status = "pending_review"
        for step in self.reviews:
            # An edit sends a reviewed conversation back to the queue (turn_edit); the rest follow the service.
            status = "pending_review" if step.action == "edit" else ACTION_TARGETS[step.action]
        return status


class DemoContentError(ValueError):
    pass


def _review_step(value: str, where: str) -> ReviewStep:
    head, _, comment = value.partition("::")
    action, *options = head.split()
    if action not in REVIEW_ACTIONS:
        raise DemoContentError(f"{where}: unknown review action {action!r}")
    values: dict[str, str] = {}
    for option in options:
        name, sep, raw = option.partition("=")
        if not sep or name not in {"score", "reasons", "turn"}:
            raise DemoContentError(f"{where}: bad review option {option!r}")
        values[name] = raw
    return ReviewStep(
        action=action,
        score=float(values["score"]) if "score" in values else None,
        reasons=tuple(r for r in values.get("reasons", "").split(",") if r),
        turn=int(values["turn"]) if "turn" in values else None,
        comment=comment.strip(),
    )


def _block_text(lines: list[str]) -> str:
    text = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


def parse_conversation(text: str, *, slug: str) -> DemoConversation:
    """Parse one conversation file; raises :class:`DemoContentError` naming the file and line."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    reviews: list[ReviewStep] = []
    position = 0
    for position, line in enumerate(lines):
        if not line.strip():
            break
        match = _HEADER.match(line)
        if not match or match.group(1) not in HEADER_FIELDS:
            raise DemoContentError(f"{slug}:{position + 1}: not a header line: {line!r}")
        name, value = match.groups()
        if name == "review":
            reviews.append(_review_step(value, f"{slug}:{position + 1}"))
        else:
            header[name] = value.strip()
    missing = [name for name in REQUIRED_FIELDS if not header.get(name)]
    if missing:
        raise DemoContentError(f"{slug}: missing header field(s): {', '.join(missing)}")

    turns: list[DemoTurn] = []
    edits: dict[int, str] = {}
    current: tuple[str, tuple] | None = None
    body: list[str] = []

    def flush() -> None:
        if current is None:
            return
        kind, data = current
        content = _block_text(body)
        if not content:
            raise DemoContentError(f"{slug}: an empty {kind} block")
        if kind == "turn":
            role, primary, intensity, secondary = data
            turns.append(DemoTurn(role, content, primary, intensity, secondary))
        else:
            edits[data[0]] = content

    for number, line in enumerate(lines[position:], start=position + 1):
        turn, edit = _TURN.match(line.strip()), _EDIT.match(line.strip())
        if turn or edit:
            flush()
            body = []
            if turn:
                if edits:
                    raise DemoContentError(f"{slug}:{number}: turns must come before [edit] blocks")
                role, primary, raw, secondary = turn.groups()
                intensity = float(raw)
                if not 0 < intensity < 1:
                    raise DemoContentError(f"{slug}:{number}: intensity {raw} is outside 0..1")
                current = ("turn", (role, primary, intensity, secondary or ""))
            else:
                current = ("edit", (int(edit.group(1)),))
        elif line.startswith("[") and line.rstrip().endswith("]"):
            raise DemoContentError(f"{slug}:{number}: malformed block header {line!r}")
        elif current is not None:
            body.append(line)
        elif line.strip():
            raise DemoContentError(f"{slug}:{number}: text before the first turn")
    flush()

    if not turns or turns[-1].role != "assistant":
        raise DemoContentError(f"{slug}: the conversation must end with the consultant")
    for index, turn in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn.role != expected:
            raise DemoContentError(f"{slug}: turn {index + 1} should be a {expected} turn")
    for step in reviews:
        if step.action == "edit" and step.turn not in edits:
            raise DemoContentError(f"{slug}: review step edit turn={step.turn} has no [edit {step.turn}] block")
    metadata = {
        "client_persona": "",  # filled in from the persona row by the loader
        "session_context": header["session_context"],
        "conversation_phase": header["conversation_phase"],
        "expected_outcome": header["expected_outcome"],
    }
    return DemoConversation(
        slug=slug,
        title=header["title"],
        persona=header["persona"],
        arc=header["arc"],
        topic=header["topic"],
        metadata=metadata,
        turns=tuple(turns),
        reviews=tuple(reviews),
        edits=edits,
    )


@cache
def demo_conversations() -> tuple[DemoConversation, ...]:
    """Every demo conversation, in file-name order; titles are unique."""
    conversations = tuple(
        parse_conversation(path.read_text(encoding="utf-8"), slug=path.stem)
        for path in sorted(CONTENT_DIR.glob("*.txt"))
    )
    titles = [c.title for c in conversations]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    if duplicates:
        raise DemoContentError(f"duplicate demo titles: {', '.join(duplicates)}")
    return conversations
