"""A Claude-API-compatible HTTP server on loopback, for driving the real ``anthropic`` SDK in tests.

The SDK talks HTTP through httpx2, so transport-level mocking is not available; instead tests start this
server and build clients with ``anthropic.Anthropic(api_key=..., base_url=server.base_url)``. Standard library
only: ``ThreadingHTTPServer`` in a daemon thread, HTTP/1.1 keep-alive, every response with a Content-Length.

Endpoints (wire format follows the SDK's models in ``anthropic.types``):

* ``POST /v1/messages`` — a Message whose single text block is the JSON of a generated financial-planning
  conversation (see ``CONVERSATION_SCHEMA``); ``"stream": true`` answers the same message as server-sent events.
* ``POST /v1/messages/count_tokens`` — ``{"input_tokens": N}``.
* ``POST /v1/messages/batches``, ``GET /v1/messages/batches[/{id}]``, ``GET …/{id}/results`` (JSON Lines),
  ``POST …/{id}/cancel``, ``DELETE …/{id}``.
* Anything else — 404 ``not_found_error``.

Scripting: every generation (a live ``POST /v1/messages`` or one request inside a batch) takes a *behaviour*:
first from the FIFO filled by :meth:`ClaudeTestServer.enqueue`, else from the first matching rule added with
:meth:`ClaudeTestServer.add_rule`, else ``default_behaviour``. See :class:`Behaviour` for the names.

Generated conversations: ``exchanges`` user→assistant pairs (user first, assistant last, roles alternating,
``turn_number`` 1..2N), where N comes from the prompt text (system blocks + message text): ``exactly N
exchanges`` > ``target_turns: N`` > ``N exchanges`` > ``exchanges: N`` (digits or one..ten), clamped to 1..10,
else 3. ``client_persona`` is the name after ``persona name:``/``persona_name:`` or ``Persona:``, else
"Test Client". Assistant turns are 100 to 400 characters and every sentence ends with ``.``, ``?`` or ``!``.
The wording is drawn from phrase pools with ``random.Random(f"{seed}:{n}")`` for the n-th generation since the
last ``reset()`` (the topic rotates with n), so runs are reproducible and consecutive answers differ.

Usage: tokens are ``ceil(chars / 4)``. ``output_tokens`` counts the returned text. The prompt text up to the last
block carrying ``cache_control`` (system or message blocks; all of it with top-level ``cache_control``) is the
cacheable prefix: the first time a prefix is seen its tokens are ``cache_creation_input_tokens``, afterwards
``cache_read_input_tokens``; ``input_tokens`` is the rest (at least 1).

Auth: a request needs ``x-api-key`` or ``authorization`` (SDK 2.x sends ``Authorization: Bearer <api_key>``, not
``x-api-key``); any value is accepted. ``POST /v1/messages`` bodies must have ``model``, ``max_tokens`` (int ≥ 1)
and a non-empty ``messages`` list, else 400 ``invalid_request_error``.

Run standalone for benchmarks: ``python -m tests.claude_server --port 8765 --latency 1.0``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BEHAVIOUR_KINDS",
    "CONVERSATION_SCHEMA",
    "SPEND_LIMIT_MESSAGE",
    "Behaviour",
    "ClaudeTestServer",
    "parse_behaviour",
]

SPEND_LIMIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
    "purchase credits."
)

# The JSON schema the platform asks for through ``output_config={"format": {"type": "json_schema", ...}}``;
# every ``valid`` answer conforms to it (kept here for tests that want to validate against it).
CONVERSATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["conversation_metadata", "turns"],
    "properties": {
        "conversation_metadata": {
            "type": "object",
            "required": ["client_persona", "session_context", "conversation_phase", "expected_outcome"],
            "properties": {
                "client_persona": {"type": "string"},
                "session_context": {"type": "string"},
                "conversation_phase": {"type": "string"},
                "expected_outcome": {"type": "string"},
            },
        },
        "turns": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["turn_number", "role", "content", "emotional_context"],
                "properties": {
                    "turn_number": {"type": "integer", "minimum": 1},
                    "role": {"enum": ["user", "assistant"]},
                    "content": {"type": "string"},
                    "emotional_context": {
                        "type": "object",
                        "required": ["primary_emotion", "intensity"],
                        "properties": {
                            "primary_emotion": {"type": "string"},
                            "secondary_emotion": {"type": "string"},
                            "intensity": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                },
            },
        },
    },
}


# --------------------------------------------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------------------------------------------

# kind -> (HTTP status, Anthropic error type, message) for the behaviours that answer with an error.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
    "unauthorized": (401, "authentication_error", "invalid x-api-key"),
    "spend_limit": (400, "invalid_request_error", SPEND_LIMIT_MESSAGE),
}

_SUCCESS_KINDS = ("valid", "truncated", "max_tokens", "schema_violation", "invalid_json", "json")
BEHAVIOUR_KINDS: frozenset[str] = frozenset((*_SUCCESS_KINDS, *_ERRORS, "hang", "error"))

_DEFAULT_RETRY_AFTER = 1.0
_DEFAULT_HANG_SECONDS = 10.0


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one generation.

    Kinds (``kind``) and the fields each reads:

    * ``valid`` — a conversation that follows ``CONVERSATION_SCHEMA``; ``stop_reason`` ``end_turn``.
    * ``truncated`` — valid JSON and shape, but the assistant turn of the 2nd exchange (the last one when
      there is a single exchange) is cut mid-word and ends with a lone backslash (``...cashfl\\``).
    * ``max_tokens`` — ``stop_reason`` ``max_tokens``, the text is the conversation JSON cut off part-way
      (never parseable), ``usage.output_tokens`` equals the request's ``max_tokens``.
    * ``schema_violation`` — valid JSON, wrong shape. ``variant="missing_role"`` (default): no turn has a
      ``role`` key. ``variant="roles"``: every turn has a role but they do not alternate (turns 1 and 2 are
      both ``user``).
    * ``invalid_json`` — ``stop_reason`` ``end_turn`` but the text is prose ("Client: ... Consultant: ..."),
      not JSON.
    * ``json`` — ``stop_reason`` ``end_turn`` and the text is exactly ``body`` (a str, or a JSON-serialisable
      value written with ``json.dumps``): scripted answers such as a judge's rubric. ``Behaviour("json",
      body={...})``; no string shorthand.
    * ``rate_limit`` — HTTP 429 ``rate_limit_error`` with a ``retry-after`` header of ``retry_after`` seconds
      (default 1). The SDK sleeps exactly that long before a retry when it is > 0.
    * ``overloaded`` — HTTP 529 ``overloaded_error`` (SDK: ``OverloadedError``, a subclass of
      ``InternalServerError``).
    * ``server_error`` — HTTP 500 ``api_error`` (``InternalServerError``).
    * ``unauthorized`` — HTTP 401 ``authentication_error`` (``AuthenticationError``).
    * ``spend_limit`` — HTTP 400 ``invalid_request_error`` with ``SPEND_LIMIT_MESSAGE`` (``BadRequestError``).
    * ``error`` — any error: ``status`` (default 500), ``error_type`` (default ``api_error``), ``message``.
    * ``hang`` — waits ``seconds`` (default 10; woken early by ``stop()``/``reset()``, in which case the
      connection is closed without an answer), then answers ``valid``. Use a client timeout below ``seconds``.
      Inside a batch a hang becomes an ``expired`` result.

    Every error kind also honours ``retry_after`` (adds ``retry-after``), ``should_retry`` (adds
    ``x-should-retry: true|false``, which the SDK obeys over its status-code rules) and ``message``.

    String shorthands (see :func:`parse_behaviour`): ``"valid"``, ``"rate_limit:2"`` (retry_after),
    ``"hang:5"`` (seconds), ``"schema_violation:roles"`` (variant), ``"error:503"`` (status).
    """

    kind: str
    retry_after: float | None = None
    seconds: float | None = None
    should_retry: bool | None = None
    variant: str | None = None
    status: int | None = None
    error_type: str | None = None
    message: str | None = None
    body: Any = None

    def __post_init__(self) -> None:
        if self.kind not in BEHAVIOUR_KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}; expected one of {sorted(BEHAVIOUR_KINDS)}")
        if self.kind == "json":
            if self.body is None:
                raise ValueError("behaviour 'json' needs a body")
            if not isinstance(self.body, str):  # kept as text so the frozen behaviour stays hashable
                object.__setattr__(self, "body", json.dumps(self.body, ensure_ascii=False))
        if self.kind == "schema_violation" and self.variant not in (None, "missing_role", "roles"):
            raise ValueError(f"schema_violation variant must be 'missing_role' or 'roles', not {self.variant!r}")

    @property
    def is_error(self) -> bool:
        return self.kind in _ERRORS or self.kind == "error"

    def error_triple(self) -> tuple[int, str, str]:
        """(HTTP status, error type, message) for an error behaviour."""
        if self.kind == "error":
            status, etype, message = self.status or 500, self.error_type or "api_error", "Internal server error"
        else:
            status, etype, message = _ERRORS[self.kind]
            status = self.status or status
            etype = self.error_type or etype
        return status, etype, self.message or message

    def error_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        retry_after = self.retry_after
        if retry_after is None and self.kind == "rate_limit":
            retry_after = _DEFAULT_RETRY_AFTER
        if retry_after is not None:
            headers["retry-after"] = _format_number(retry_after)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


def parse_behaviour(value: str | Behaviour) -> Behaviour:
    """A :class:`Behaviour` from itself or from a shorthand string ``kind`` or ``kind:param``."""
    if isinstance(value, Behaviour):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a behaviour is a str or Behaviour, not {type(value).__name__}")
    kind, _, param = value.strip().partition(":")
    kind = kind.strip()
    param = param.strip()
    if not param:
        return Behaviour(kind)
    if kind == "hang":
        return Behaviour(kind, seconds=float(param))
    if kind == "schema_violation":
        return Behaviour(kind, variant=param)
    if kind == "error":
        return Behaviour(kind, status=int(param))
    if kind in _ERRORS:
        return Behaviour(kind, retry_after=float(param))
    raise ValueError(f"behaviour {kind!r} takes no parameter (got {value!r})")


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --------------------------------------------------------------------------------------------------------------
# Conversation generation
# --------------------------------------------------------------------------------------------------------------

_TOPICS: list[dict[str, Any]] = [
    {
        "name": "retirement readiness",
        "context": "Client aged {age} reviewing retirement readiness with about {amount} saved.",
        "outcome": "Client leaves with a target savings rate and a plan to capture the full employer match.",
        "openers": [
            "I'm {age} and I only have about {amount} saved for retirement. Am I too far behind to catch up?",
            "My coworkers keep talking about retiring at {ret_age}, and I honestly don't know if that's realistic "
            "for me. I have roughly {amount} in my 401(k).",
            "I've been putting off thinking about retirement for years. Now that I'm {age}, it keeps me up at night.",
        ],
        "followups": [
            "My employer matches up to {pct} percent, but I'm only contributing three percent right now. "
            "Should I change that?",
            "What happens if the market drops right before I retire?",
            "Is it better to use a Roth account or stick with the traditional one?",
            "Could I realistically put away an extra {monthly} a month? I'm not sure where it would come from.",
        ],
        "advice": [
            "At {age}, you still have meaningful time for compounding to work, especially if you increase "
            "contributions gradually.",
            "Capturing the full employer match is usually the first priority, because it is effectively an instant "
            "return on your money.",
            "A common approach is to raise your contribution by one percentage point each year, often timed with a "
            "raise so your take-home pay barely changes.",
            "If we add {monthly} a month for the next {years} years, your projected balance changes quite a bit, "
            "even with conservative return assumptions.",
            "A diversified target-date fund can be a reasonable default while we work out a more tailored mix.",
        ],
        "questions": [
            "What age would you ideally like to stop working full time?",
            "Do you know roughly what your monthly expenses would look like in retirement?",
            "How would you feel about increasing your contribution to {pct} percent starting next month?",
            "Are there other accounts, like an old 401(k) from a previous job, that we should include?",
        ],
    },
    {
        "name": "credit card debt",
        "context": "Client carrying about {amount} in credit card debt at {rate} percent APR across several cards.",
        "outcome": "Client commits to a debt payoff method and a realistic monthly payment.",
        "openers": [
            "I have about {amount} spread across four credit cards, and the interest alone is eating me alive. "
            "I don't even know where to start.",
            "I'm embarrassed to admit it, but my credit card balances have doubled in the last two years.",
            "Every month I pay the minimums and the balance barely moves. The highest card is at {rate} percent.",
        ],
        "followups": [
            "Should I pay off the smallest balance first or the one with the highest interest?",
            "Would a balance transfer card actually help, or is that a trap?",
            "I could probably free up {monthly} a month if I cut back on takeout. Is that enough to make a difference?",
            "Should I stop contributing to my retirement account until the debt is gone?",
        ],
        "advice": [
            "The avalanche method targets the highest interest rate first, which saves the most money over time.",
            "The snowball method pays off the smallest balance first, and the quick wins help many people stay "
            "motivated.",
            "At {rate} percent, every extra dollar you send to that card earns you a guaranteed {rate} percent return.",
            "A balance transfer can help if you can clear the balance before the promotional rate ends, but the "
            "transfer fee needs to be part of the math.",
            "With an extra {monthly} a month, you could realistically be debt free in about {years_short} years "
            "instead of more than a decade.",
        ],
        "questions": [
            "Which card feels the most stressful to you right now?",
            "Do you have any savings set aside, so a surprise expense doesn't go back on the cards?",
            "Would it help to automate the extra payment so you don't have to think about it each month?",
        ],
    },
    {
        "name": "emergency fund",
        "context": "Client with irregular freelance income and less than one month of expenses in savings.",
        "outcome": "Client sets a staged emergency fund goal and automates transfers.",
        "openers": [
            "My car needed a {small_amount} repair last month and I had to put it on a credit card. I feel like "
            "I'm always one surprise away from disaster.",
            "I freelance, so my income swings a lot from month to month. How much should I actually keep in savings?",
            "I keep hearing I need six months of expenses saved, and that number feels impossible.",
        ],
        "followups": [
            "Where should I keep the emergency money so I'm not tempted to spend it?",
            "Does it make sense to save while I still have debt?",
            "What counts as an actual emergency? I'm worried I'll dip into it for everything.",
            "Could I start with something like {monthly} a month?",
        ],
        "advice": [
            "Instead of aiming for six months right away, let's set a first milestone of one month of essential "
            "expenses.",
            "A high-yield savings account at a separate bank keeps the money accessible without making it too easy "
            "to spend.",
            "Because your income is variable, a slightly larger cushion, closer to six months, is a sensible "
            "long-term target.",
            "Automating a transfer on the day your payments arrive means saving happens before spending decisions do.",
            "At {monthly} a month, you would reach your first milestone in about {months} months.",
        ],
        "questions": [
            "What are your essential monthly expenses if we strip things down to the basics?",
            "Which day of the month would be best for an automatic transfer?",
            "How would it feel to have that first month fully covered?",
        ],
    },
    {
        "name": "first home purchase",
        "context": "First-time buyer household hoping to purchase a home within {years_short} years.",
        "outcome": "Client understands down payment options and the total monthly cost of owning.",
        "openers": [
            "My partner and I want to buy our first home in the next couple of years. We have about {amount} "
            "saved, but prices keep going up.",
            "Everyone says renting is throwing money away. Should I be rushing to buy a house?",
            "We found a place we love, but the monthly payment would be almost half our take-home pay.",
        ],
        "followups": [
            "Do we really need twenty percent down, or is that outdated advice?",
            "What costs do first-time buyers usually forget about?",
            "Should we use some of our retirement savings for the down payment?",
            "How much house can we actually afford without feeling stretched?",
        ],
        "advice": [
            "Many lenders accept smaller down payments, but putting down less than twenty percent usually means "
            "paying private mortgage insurance.",
            "Beyond the mortgage, budget for property taxes, insurance, maintenance, and closing costs of roughly "
            "two to five percent of the price.",
            "A common guideline is keeping housing costs under about twenty-eight percent of gross income, though "
            "your comfort level matters just as much.",
            "Renting is not wasted money; it buys flexibility, and the right time to buy depends on how long you "
            "plan to stay.",
            "Tapping retirement savings for a down payment can work, but it often carries taxes or lost growth that "
            "are easy to underestimate.",
        ],
        "questions": [
            "How long do you expect to stay in the area once you buy?",
            "What monthly payment would let you still sleep well at night?",
            "Have you checked your credit scores recently, since they will affect your rate?",
        ],
    },
    {
        "name": "college savings",
        "context": "Parents of a {kid_age}-year-old weighing college savings against their own retirement.",
        "outcome": "Client balances 529 contributions with retirement priorities.",
        "openers": [
            "Our daughter is {kid_age}, and we haven't saved anything for college yet. I feel like we've already "
            "failed her.",
            "Should we be putting money into a 529 plan or just paying down our mortgage faster?",
            "College costs are terrifying. How much do we actually need to save for our son?",
        ],
        "followups": [
            "Is it selfish to prioritize our retirement over college savings?",
            "What happens to the 529 money if our kid doesn't go to college?",
            "Would {monthly} a month even make a dent?",
            "Should the grandparents contribute directly or give the money to us?",
        ],
        "advice": [
            "It is not selfish at all; students can borrow for college, but nobody offers loans for retirement.",
            "A 529 plan grows tax-free when used for qualified education expenses, and many states offer a "
            "deduction on contributions.",
            "Saving {monthly} a month for {years_kid} years could cover a meaningful share of in-state tuition, even "
            "if it doesn't cover everything.",
            "You do not need to fund the full cost of a degree; aiming for a third through savings is a common and "
            "realistic target.",
            "If plans change, 529 funds can often be moved to another family member, so the money is rarely stranded.",
        ],
        "questions": [
            "What kind of school do you imagine your child attending, if you had to guess today?",
            "How do you and your partner feel about student loans as part of the mix?",
            "Would you like me to run a couple of scenarios with different monthly amounts?",
        ],
    },
    {
        "name": "market volatility",
        "context": "Client with {amount} invested who is anxious after a recent market decline.",
        "outcome": "Client keeps a long-term allocation and sets a simple rebalancing rule.",
        "openers": [
            "The market dropped again this week and my portfolio is down almost {pct} percent. Should I sell "
            "before it gets worse?",
            "I inherited {amount} and I'm scared to invest it because I don't want to lose it.",
            "I've been keeping most of my savings in cash because investing feels like gambling.",
        ],
        "followups": [
            "How do I know if my investments are too risky for me?",
            "Should I put everything in at once or spread it out over time?",
            "What if this is the start of a long recession?",
            "Are index funds really enough, or do I need individual stocks?",
        ],
        "advice": [
            "Market declines are a normal part of investing, and historically the bigger risk has been selling "
            "during them.",
            "Your allocation should reflect when you need the money; cash you need within a few years belongs "
            "somewhere stable.",
            "Spreading a lump sum over several months can make it feel more manageable, even though investing all "
            "at once often comes out slightly ahead.",
            "Broad, low-cost index funds give you thousands of companies in one holding, which is hard to beat for "
            "most long-term investors.",
            "Keeping too much in cash has its own risk, because inflation quietly erodes purchasing power every year.",
        ],
        "questions": [
            "When do you expect to need this money?",
            "How did you feel the last time the market fell, and what did you do?",
            "Would it help to set a simple rule, such as rebalancing once a year, so you're not reacting to headlines?",
        ],
    },
    {
        "name": "budget after an income change",
        "context": "Client reworking the budget after a job change that cut take-home pay by about {monthly} a month.",
        "outcome": "Client builds a revised spending plan that protects essentials.",
        "openers": [
            "I just got laid off, and my severance only covers about three months. I'm trying not to panic.",
            "I took a new job that I love, but it pays about {monthly} less per month. How do I rework my budget?",
            "I never really had a budget, and now that money is tighter I don't know where it all goes.",
        ],
        "followups": [
            "Which expenses should I cut first?",
            "Should I pause my retirement contributions while things are tight?",
            "Is there a budgeting method that doesn't feel like a punishment?",
            "How do I talk to my partner about cutting back without it turning into a fight?",
        ],
        "advice": [
            "The first step is separating essentials, like housing, utilities, food, and insurance, from flexible "
            "spending.",
            "A split of fifty percent for needs, thirty for wants, and twenty for savings is a helpful starting "
            "frame rather than a strict rule.",
            "Subscriptions and recurring charges are often the easiest place to find a quick {small_monthly} a month.",
            "If you can keep contributing enough to get the employer match, that is usually worth protecting even "
            "in a tighter budget.",
            "Framing the conversation around shared goals, rather than individual spending, tends to make money "
            "talks with a partner much easier.",
        ],
        "questions": [
            "What does a typical month of spending look like for you right now?",
            "Which expenses would feel hardest to give up?",
            "Would you be open to tracking every purchase for the next two weeks?",
        ],
    },
    {
        "name": "windfall and taxes",
        "context": "Client received a {amount} bonus and wants to use it wisely.",
        "outcome": "Client splits the windfall between debt, savings, and one meaningful purchase.",
        "openers": [
            "I just got a {amount} bonus at work. I don't want to waste it like I did last year.",
            "My tax refund this year was bigger than expected. Should I invest it or pay down my car loan?",
            "I sold some stock and I'm worried about how much I'll owe in taxes.",
        ],
        "followups": [
            "Is it okay to spend some of it on something fun?",
            "How much will taxes take out of a bonus like this?",
            "Should I max out my IRA with it?",
            "Would paying off my car loan early actually save much?",
        ],
        "advice": [
            "Bonuses are often withheld at a flat supplemental rate, so it is worth checking whether you'll owe "
            "more at tax time.",
            "Setting aside a small portion for something meaningful can make it much easier to stay disciplined "
            "with the rest.",
            "If you're eligible, funding an IRA for the year is a strong use of a windfall, since the contribution "
            "window is limited.",
            "Paying off a loan early is a guaranteed return equal to its interest rate, so the answer depends on "
            "what that rate is.",
            "Putting half toward goals, a third into savings, and the rest toward enjoyment keeps the decision from "
            "feeling all or nothing.",
        ],
        "questions": [
            "What would feel like a genuinely good use of this money a year from now?",
            "What interest rate are you paying on the car loan?",
            "Is there anything you've been postponing that this money could help with?",
        ],
    },
]

_ACKS = [
    "That is a really common worry, and I'm glad you brought it up.",
    "Thank you for laying that out so clearly.",
    "It makes sense that this feels heavy right now.",
    "I appreciate you being so candid about where things stand.",
    "That's a great question, and it's one a lot of my clients ask.",
    "You've already done more groundwork than you might think.",
    "Let's slow down and look at this piece by piece.",
    "I hear how stressful this has been for you.",
    "That context helps a lot.",
    "Good, that gives us a solid starting point.",
    "I can tell you've been thinking hard about this.",
    "That's completely understandable.",
]

_CLOSINGS = [
    "For next steps, I'll send you a one-page summary, and we can review your progress in about {weeks} weeks.",
    "Let's schedule a check-in in {weeks} weeks to see how the new plan feels in practice.",
    "You don't have to get everything perfect this month; consistency matters far more than precision.",
    "I'll put these numbers into a written plan so you can see exactly how each step moves you forward.",
    "Before our next meeting, try tracking your spending for two weeks so we can fine-tune the plan together.",
]

_GENERIC_ADVICE = [
    "Writing the plan down, even on a single page, makes it far more likely that you'll follow through.",
    "Small, automatic steps tend to beat big intentions, because they keep working on the months when motivation dips.",
    "It helps to separate the decision you need to make this month from the ones that can wait until next quarter.",
    "Your plan should fit your real life, so we'll build in some flexibility rather than assuming every month goes "
    "perfectly.",
    "Checking progress every few months is usually enough; looking daily tends to create more stress than insight.",
    "Progress here is rarely a straight line, and a setback month does not undo the habits you are building.",
]

_GENERIC_QUESTIONS = [
    "What would make this plan feel realistic for you rather than just good on paper?",
    "Is there anything about this that worries you that we haven't talked about yet?",
    "How does that sound as a starting point?",
    "What would need to change in your month for that to feel comfortable?",
]

_USER_FOLLOWUPS = [
    "That actually makes me feel a little better. What should I do first?",
    "Okay, but what if I can't stick to it?",
    "Can you walk me through what that would look like month to month?",
    "I hadn't thought about it that way before. Where do people usually go wrong?",
]

_USER_CLOSINGS = [
    "That sounds doable. I think I can commit to that starting this month.",
    "Thank you, this is the first time this has felt manageable. What should I do before our next meeting?",
    "Okay, I'm nervous, but I want to try it. Can you put that plan in writing for me?",
    "I appreciate you not making me feel judged. Let's do it.",
]

_USER_EMOTIONS = ["anxious", "overwhelmed", "hopeful", "frustrated", "curious", "skeptical", "embarrassed", "confused"]
_USER_CLOSING_EMOTIONS = ["relieved", "hopeful", "determined", "motivated"]
_ASSISTANT_EMOTIONS = ["empathetic", "reassuring", "encouraging", "calm", "supportive", "confident"]
_PHASES = ["initial_consultation", "discovery", "strategy_development", "follow_up_review"]

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_NUM = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
# Highest priority first.
_EXCHANGE_PATTERNS = [
    re.compile(r"exactly\s+" + _NUM + r"\s+(?:conversation(?:al)?\s+)?exchanges?\b", re.IGNORECASE),
    re.compile(r"target_turns[\"']?\s*[:=]\s*[\"']?(\d+)", re.IGNORECASE),
    re.compile(r"\b" + _NUM + r"\s+(?:conversation(?:al)?\s+)?exchanges?\b", re.IGNORECASE),
    re.compile(r"\bexchanges[\"']?\s*[:=]\s*[\"']?(\d+)", re.IGNORECASE),
]
_PERSONA_PATTERNS = [
    re.compile(r"persona[ _]name[\"'*]*\s*[:=]\s*[\"'*]*\s*([^\"\n\r]+)", re.IGNORECASE),
    re.compile(r"\bpersona[\"'*]*\s*:\s*[\"'*]*\s*([^\"\n\r]+)", re.IGNORECASE),
]
DEFAULT_EXCHANGES = 3
DEFAULT_PERSONA = "Test Client"


def _sentences_ok(text: str) -> bool:
    return all(s and s[-1] in ".?!" for s in re.split(r"(?<=[.?!])\s+", text.strip()))


class _Filler(dict):
    """Random values for the ``{placeholder}``s of the phrase pools, fixed for one conversation."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(
            age=str(rng.randint(27, 61)),
            ret_age=str(rng.choice([55, 58, 60, 62, 65])),
            amount=f"${rng.randrange(6_000, 95_000, 250):,}",
            small_amount=f"${rng.randrange(600, 3_800, 25):,}",
            monthly=f"${rng.randrange(150, 1_400, 25):,}",
            small_monthly=f"${rng.randrange(40, 220, 5)}",
            pct=str(rng.randint(4, 12)),
            rate=f"{rng.randint(15, 28)}.{rng.randint(0, 9)}",
            years=str(rng.randint(8, 30)),
            years_short=str(rng.randint(2, 5)),
            years_kid=str(rng.randint(6, 14)),
            kid_age=str(rng.randint(2, 12)),
            months=str(rng.randint(3, 14)),
            weeks=str(rng.choice([2, 3, 4, 6, 8])),
        )


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format_map(values)


def _emotion(rng: random.Random, pool: list[str], *, lo: float, hi: float) -> dict[str, Any]:
    primary = rng.choice(pool)
    emotional: dict[str, Any] = {"primary_emotion": primary}
    if rng.random() < 0.6:
        emotional["secondary_emotion"] = rng.choice([e for e in pool if e != primary])
    emotional["intensity"] = round(rng.uniform(lo, hi), 2)
    return emotional


class _Deck:
    """Draws phrases without repeats: the primary pool shuffled, then the fallback pool, then everything again."""

    def __init__(self, rng: random.Random, primary: list[str], fallback: list[str]) -> None:
        self._rng = rng
        self._all = [*primary, *fallback]
        self._cards = rng.sample(fallback, len(fallback)) + rng.sample(primary, len(primary))

    def draw(self) -> str:
        if not self._cards:
            self._cards = self._rng.sample(self._all, len(self._all))
        return self._cards.pop()


def _assistant_text(decks: dict[str, _Deck], rng: random.Random, values: dict[str, str], *, closing: bool) -> str:
    """2 to 4 sentences, 100 to 400 characters, every sentence ending with punctuation."""
    ack = decks["acks"].draw()
    advice = [decks["advice"].draw()]
    if rng.random() < 0.5:
        advice.append(decks["advice"].draw())
    last = decks["closings"].draw() if closing else decks["questions"].draw()
    natural = [ack, *advice, last]
    chosen: list[str] = []
    for sentence in [advice[0], last, ack, *advice[1:]]:  # most important first; skip what would overflow 400
        candidate = [s for s in natural if s in chosen or s == sentence]
        if len(" ".join(_fill(s, values) for s in candidate)) <= 400:
            chosen = candidate
    return " ".join(_fill(s, values) for s in chosen)


def generate_conversation(rng: random.Random, *, exchanges: int, persona: str, topic_index: int) -> dict[str, Any]:
    """A conversation following ``CONVERSATION_SCHEMA``: ``exchanges`` user→assistant pairs."""
    topic = _TOPICS[topic_index % len(_TOPICS)]
    values = _Filler(rng)
    followups = rng.sample(topic["followups"], len(topic["followups"])) + rng.sample(
        _USER_FOLLOWUPS, len(_USER_FOLLOWUPS)
    )
    decks = {
        "acks": _Deck(rng, _ACKS, []),
        "advice": _Deck(rng, topic["advice"], _GENERIC_ADVICE),
        "questions": _Deck(rng, topic["questions"], _GENERIC_QUESTIONS),
        "closings": _Deck(rng, _CLOSINGS, []),
    }
    turns: list[dict[str, Any]] = []
    for i in range(exchanges):
        last = i == exchanges - 1
        if i == 0:
            user = rng.choice(topic["openers"])
            user_emotion = _emotion(rng, _USER_EMOTIONS, lo=0.55, hi=0.95)
        elif last:
            user = rng.choice(_USER_CLOSINGS)
            user_emotion = _emotion(rng, _USER_CLOSING_EMOTIONS, lo=0.3, hi=0.7)
        else:
            user = followups[(i - 1) % len(followups)]
            user_emotion = _emotion(rng, _USER_EMOTIONS, lo=0.35, hi=0.85)
        turns.append(
            {
                "turn_number": len(turns) + 1,
                "role": "user",
                "content": _fill(user, values),
                "emotional_context": user_emotion,
            }
        )
        turns.append(
            {
                "turn_number": len(turns) + 1,
                "role": "assistant",
                "content": _assistant_text(decks, rng, values, closing=last and exchanges > 1),
                "emotional_context": _emotion(rng, _ASSISTANT_EMOTIONS, lo=0.4, hi=0.8),
            }
        )
    return {
        "conversation_metadata": {
            "client_persona": persona,
            "session_context": _fill(topic["context"], values),
            "conversation_phase": rng.choice(_PHASES),
            "expected_outcome": topic["outcome"],
        },
        "turns": turns,
    }


def requested_exchanges(text: str, default: int = DEFAULT_EXCHANGES) -> int:
    """The exchange count asked for in ``text`` (``exactly N exchanges``, ``target_turns: N``, ``N exchanges``,
    ``exchanges: N``; first pattern that matches wins), clamped to 1..10; ``default`` when none matches."""
    for pattern in _EXCHANGE_PATTERNS:
        match = pattern.search(text)
        if match:
            raw = match.group(1).lower()
            n = _NUMBER_WORDS.get(raw) or int(raw)
            return max(1, min(10, n))
    return default


def requested_persona(text: str, default: str = DEFAULT_PERSONA) -> str:
    """The name after ``persona name:``/``persona_name:`` or ``Persona:`` in ``text``, else ``default``."""
    for pattern in _PERSONA_PATTERNS:
        match = pattern.search(text)
        if match:
            name = match.group(1).strip().strip("*\"'`").strip().rstrip(".,;")
            if name:
                return name[:120]
    return default


# --------------------------------------------------------------------------------------------------------------
# Request helpers
# --------------------------------------------------------------------------------------------------------------


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if isinstance(block.get("text"), str):
        return block["text"]
    content = block.get("content")  # tool_result
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_block_text(b) for b in content)
    return ""


def _prompt_segments(params: dict[str, Any]) -> list[tuple[str, bool]]:
    """(text, has cache_control) for each system block then each message block, in prompt order."""
    segments: list[tuple[str, bool]] = []
    system = params.get("system")
    if isinstance(system, str):
        segments.append((system, False))
    elif isinstance(system, list):
        segments.extend((_block_text(b), isinstance(b, dict) and bool(b.get("cache_control"))) for b in system)
    for message in params.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            segments.append((content, False))
        elif isinstance(content, list):
            segments.extend((_block_text(b), isinstance(b, dict) and bool(b.get("cache_control"))) for b in content)
    return segments


def _prompt_text(params: dict[str, Any]) -> str:
    return "\n\n".join(text for text, _ in _prompt_segments(params) if text)


def _cacheable_prefix(params: dict[str, Any]) -> str:
    """The prompt text up to and including the last block marked with ``cache_control`` (all of it when the
    top-level ``cache_control`` asks for automatic caching); ``""`` when nothing is marked."""
    segments = _prompt_segments(params)
    if params.get("cache_control"):
        last = len(segments) - 1
    else:
        marked = [i for i, (_, cached) in enumerate(segments) if cached]
        last = marked[-1] if marked else -1
    return "\n\n".join(text for text, _ in segments[: last + 1] if text)


def _validate_params(params: Any) -> str | None:
    """An error message when ``params`` is not a usable Messages create body."""
    if not isinstance(params, dict):
        return "body: Input should be an object"
    for field in ("model", "max_tokens", "messages"):
        if field not in params:
            return f"{field}: Field required"
    if not isinstance(params["model"], str) or not params["model"]:
        return "model: Input should be a valid string"
    max_tokens = params["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    messages = params["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if "content" not in message:
            return f"messages.{i}.content: Field required"
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    return f"{prefix}_01{uuid.uuid4().hex[:22]}"


def _error_body(etype: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


class _Aborted(Exception):
    """The server was stopped or reset while a request waited; close the connection without answering."""


@dataclass
class _Rule:
    substring: str
    behaviour: Behaviour
    remaining: int | None


@dataclass
class _Batch:
    id: str
    created_at: datetime
    expires_at: datetime
    custom_ids: list[str]
    results: list[dict[str, Any]]  # one MessageBatchResult per custom_id, in request order
    params: list[dict[str, Any]]
    polls: int = 0
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    host: str = ""

    @property
    def status(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"


# --------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------


class ClaudeTestServer:
    """A scripted Claude API on loopback. Thread-safe; see the module docstring and :class:`Behaviour`.

    Attributes you may set at any time (``reset()`` restores them):

    * ``default_behaviour`` — used when neither the queue nor a rule applies (``"valid"``).
    * ``latency`` — seconds slept before answering every ``POST /v1/messages`` (live generations, errors
      included; not batches, not count_tokens). Sleeps overlap across concurrent requests.
    * ``batch_polls_until_end`` — a batch is ``ended`` once it has been retrieved (``GET
      /v1/messages/batches/{id}``) this many times (1). Read at each retrieve, so changing it affects batches
      already created; 0 at creation = ended at once. ``batches.results()`` in the SDK retrieves first, which
      counts as a retrieve.
    * ``require_api_key`` — answer 401 when a request carries neither ``x-api-key`` nor ``authorization``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        default_behaviour: str | Behaviour = "valid",
        batch_polls_until_end: int = 1,
        seed: int | str = 0,
        require_api_key: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._seed = seed
        self._topic_offset = random.Random(f"{seed}:topics").randrange(len(_TOPICS))
        self._initial = {
            "latency": latency,
            "default_behaviour": parse_behaviour(default_behaviour),
            "batch_polls_until_end": batch_polls_until_end,
            "require_api_key": require_api_key,
        }
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._wake = threading.Event()
        self._reset_state()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> ClaudeTestServer:
        if self._httpd is not None:
            return self
        self._wake = threading.Event()
        handler = type("ClaudeHandler", (_Handler,), {"claude": self})
        httpd = _HTTPServer((self.host, self._requested_port), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="claude-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._wake.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:  # idle keep-alive connections would otherwise hold their threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> ClaudeTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ClaudeTestServer is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget requests, queue, rules, prompt cache, batches and counters; restore the settable attributes;
        wake (and abandon) any request still sleeping in ``latency`` or ``hang``."""
        with self._lock:
            old_wake = self._wake
            self._reset_state()
        old_wake.set()

    def _reset_state(self) -> None:
        with self._lock:
            self.latency: float = self._initial["latency"]
            self.default_behaviour = self._initial["default_behaviour"]
            self.batch_polls_until_end: int = self._initial["batch_polls_until_end"]
            self.require_api_key: bool = self._initial["require_api_key"]
            self._requests: list[dict[str, Any]] = []
            self._queue: list[Behaviour] = []
            self._rules: list[_Rule] = []
            self._cache: set[str] = set()
            self._batches: dict[str, _Batch] = {}
            self._generation = 0
            self.errors: list[BaseException] = []
            self._wake = threading.Event()

    # -- scripting ---------------------------------------------------------------------------------------------

    @property
    def default_behaviour(self) -> Behaviour:
        return self._default_behaviour

    @default_behaviour.setter
    def default_behaviour(self, value: str | Behaviour) -> None:
        self._default_behaviour = parse_behaviour(value)  # fail fast on a typo, in the test, not in a handler

    def enqueue(self, *behaviours: str | Behaviour) -> None:
        """Append behaviours to the FIFO; each following generation takes one (before any rule applies)."""
        parsed = [parse_behaviour(b) for b in behaviours]
        with self._lock:
            self._queue.extend(parsed)

    def add_rule(self, substring: str, behaviour: str | Behaviour, times: int | None = None) -> None:
        """Use ``behaviour`` for generations whose request contains ``substring`` (in the raw JSON body, in
        the body re-encoded without ASCII escapes, or in the plain system+messages text), at most ``times``
        times (None: always). Rules are tried in the order added; the queue goes first."""
        rule = _Rule(substring, parse_behaviour(behaviour), times)
        with self._lock:
            self._rules.append(rule)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def queued(self) -> list[Behaviour]:
        with self._lock:
            return list(self._queue)

    # -- inspection --------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (all paths): ``method``, ``path`` (no query), ``query``, ``headers``
        (lower-cased names), ``api_key`` (from ``x-api-key`` or ``authorization: Bearer …``; SDK 2.x sends the
        latter), ``body`` (parsed JSON or None), ``raw_body`` (str), ``time`` (epoch seconds on arrival),
        ``behaviour`` (kind used for a live generation, else None)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None, *, exact: bool = True) -> list[dict[str, Any]]:
        """Recorded requests to ``path`` (exactly, or as a prefix when ``exact=False``), optionally by method."""
        return [
            r
            for r in self.requests
            if (r["path"] == path if exact else r["path"].startswith(path))
            and (method is None or r["method"] == method.upper())
        ]

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        """The live generations: ``POST /v1/messages`` (retries included)."""
        return self.requests_to("/v1/messages", "POST")

    @property
    def last_request(self) -> dict[str, Any] | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def count(self, path_prefix: str = "/v1/messages", method: str | None = None) -> int:
        """How many requests had a path starting with ``path_prefix`` (note ``/v1/messages`` also matches the
        batch endpoints; ``len(server.message_requests)`` counts live generations only)."""
        return len(self.requests_to(path_prefix, method, exact=False))

    @property
    def batches(self) -> dict[str, _Batch]:
        with self._lock:
            return dict(self._batches)

    # -- behaviour selection and answers (called from handler threads) -----------------------------------------

    def _choose(self, params: dict[str, Any], raw: str) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            if self._rules:
                haystacks = (raw, json.dumps(params, ensure_ascii=False), _prompt_text(params))
                for rule in self._rules:
                    if any(rule.substring in h for h in haystacks):
                        if rule.remaining is not None:
                            rule.remaining -= 1
                            if rule.remaining <= 0:
                                self._rules.remove(rule)
                        return rule.behaviour
            return self._default_behaviour

    def _usage(self, params: dict[str, Any], output_text: str, *, service_tier: str) -> dict[str, Any]:
        total = _tokens(_prompt_text(params))
        prefix = _cacheable_prefix(params)
        created = read = 0
        if prefix:
            key = hashlib.sha256(prefix.encode()).hexdigest()
            with self._lock:
                if key in self._cache:
                    read = _tokens(prefix)
                else:
                    self._cache.add(key)
                    created = _tokens(prefix)
        return {
            "input_tokens": max(1, total - created - read),
            "output_tokens": _tokens(output_text) or 1,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": created, "ephemeral_1h_input_tokens": 0},
            "service_tier": service_tier,
        }

    def _message(self, params: dict[str, Any], behaviour: Behaviour, *, service_tier: str = "standard") -> dict:
        """A Message for a non-error behaviour."""
        with self._lock:
            generation = self._generation
            self._generation += 1
        rng = random.Random(f"{self._seed}:{generation}")
        text_in = _prompt_text(params)
        exchanges = requested_exchanges(text_in)
        conversation = generate_conversation(
            rng, exchanges=exchanges, persona=requested_persona(text_in), topic_index=generation + self._topic_offset
        )
        stop_reason = "end_turn"
        kind = behaviour.kind
        if kind == "truncated":
            turn = conversation["turns"][3 if exchanges >= 2 else 1]
            turn["content"] = _cut_mid_word(turn["content"], rng) + "\\"
        elif kind == "schema_violation":
            if behaviour.variant == "roles":
                conversation["turns"][1]["role"] = "user"
            else:
                for turn in conversation["turns"]:
                    del turn["role"]
        text = json.dumps(conversation, ensure_ascii=False)
        if kind == "json":
            text = behaviour.body
        if kind == "invalid_json":
            text = _as_prose(conversation)
        usage = self._usage(params, text, service_tier=service_tier)
        if kind == "max_tokens":
            cut = max(20, min(params["max_tokens"] * 4, int(len(text) * 0.6)))
            text = text[:cut]
            stop_reason = "max_tokens"
            usage["output_tokens"] = params["max_tokens"]
        return {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def _wait(self, seconds: float, wake: threading.Event) -> None:
        if seconds > 0 and wake.wait(seconds):
            raise _Aborted

    # -- batches -----------------------------------------------------------------------------------------------

    def _batch_result(self, params: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
        if behaviour.kind == "hang":
            return {"type": "expired"}
        if behaviour.is_error:
            _, etype, message = behaviour.error_triple()
            return {"type": "errored", "error": _error_body(etype, message, _new_id("req"))}
        return {"type": "succeeded", "message": self._message(params, behaviour, service_tier="batch")}

    def _batch_object(self, batch: _Batch) -> dict[str, Any]:
        n = len(batch.custom_ids)
        counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        results_url = None
        if batch.ended_at is not None:
            counts["processing"] = 0
            for result in batch.results:
                counts[result["type"]] += 1
            results_url = f"http://{batch.host}/v1/messages/batches/{batch.id}/results"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.expires_at),
            "ended_at": _rfc3339(batch.ended_at),
            "cancel_initiated_at": _rfc3339(batch.cancel_initiated_at),
            "archived_at": None,
            "results_url": results_url,
        }


def _cut_mid_word(content: str, rng: random.Random) -> str:
    """``content`` cut inside a word of 5+ letters, keeping at least ~60 characters when possible."""
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", content) if m.start() >= 60] or list(
        re.finditer(r"[A-Za-z]{3,}", content)
    )
    if not words:
        return content[: max(1, len(content) // 2)]
    word = words[len(words) // 2 + rng.randrange(max(1, len(words) // 2))]
    return content[: word.start() + rng.randint(2, len(word.group()) - 1)]


def _as_prose(conversation: dict[str, Any]) -> str:
    lines = ["Here is a realistic conversation between the client and the financial consultant:", ""]
    for turn in conversation["turns"]:
        speaker = "Client" if turn.get("role", "user") == "user" else "Consultant"
        lines.append(f"{speaker}: {turn['content']}")
    lines += ["", "Let me know if you would like me to adjust the tone or the length."]
    return "\n".join(lines)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the socketserver default of 5 drops connections under benchmark concurrency


class _Handler(BaseHTTPRequestHandler):
    claude: ClaudeTestServer
    protocol_version = "HTTP/1.1"
    server_version = "ClaudeTestServer/1.0"

    # -- plumbing ----------------------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.claude._lock:
            self.claude._connections.add(self.connection)

    def finish(self) -> None:
        with self.claude._lock:
            self.claude._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("request-id", self._request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _error(self, status: int, etype: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, _error_body(etype, message, self._request_id), headers)

    def _dispatch(self, method: str) -> None:
        claude = self.claude
        self._request_id = _new_id("req")
        wake = claude._wake
        arrived = time.time()
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        body: Any = None
        body_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_error = True
        headers = {k.lower(): v for k, v in self.headers.items()}
        authorization = headers.get("authorization", "")
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": split.query,
            "headers": headers,
            "api_key": headers.get("x-api-key")
            or (authorization[7:] if authorization.lower().startswith("bearer ") else None),
            "body": body,
            "raw_body": raw,
            "time": arrived,
            "behaviour": None,
        }
        with claude._lock:
            claude._requests.append(record)
        try:
            self._route(method, path, record, body_error, wake)
        except _Aborted:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts, hangs)
            self.close_connection = True
        except Exception as exc:
            with claude._lock:
                claude.errors.append(exc)
            with contextlib.suppress(OSError):
                self._error(500, "api_error", f"ClaudeTestServer bug: {type(exc).__name__}: {exc}")

    def _route(self, method: str, path: str, record: dict[str, Any], body_error: bool, wake: threading.Event) -> None:
        claude = self.claude
        headers = record["headers"]
        if not path.startswith("/v1/"):
            return self._error(404, "not_found_error", "Not Found")
        if claude.require_api_key and not (headers.get("x-api-key") or headers.get("authorization")):
            return self._error(401, "authentication_error", "x-api-key header is required")
        if body_error:
            return self._error(
                400, "invalid_request_error", "There was an error parsing the body of your request as JSON."
            )
        body = record["body"]
        parts = path.strip("/").split("/")  # ["v1", "messages", ...]
        if method == "POST" and path == "/v1/messages":
            return self._messages(body, record, wake)
        if method == "POST" and path == "/v1/messages/count_tokens":
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._error(400, "invalid_request_error", "messages: Field required")
            return self._json(200, {"input_tokens": _tokens(_prompt_text(body))})
        if parts[:3] == ["v1", "messages", "batches"]:
            return self._batches(method, parts[3:], body)
        return self._error(404, "not_found_error", f"Not Found: {method} {path}")

    # -- /v1/messages ------------------------------------------------------------------------------------------

    def _messages(self, body: Any, record: dict[str, Any], wake: threading.Event) -> None:
        claude = self.claude
        problem = _validate_params(body)
        if problem:
            return self._error(400, "invalid_request_error", problem)
        behaviour = claude._choose(body, record["raw_body"])
        record["behaviour"] = behaviour.kind
        claude._wait(claude.latency, wake)
        if behaviour.kind == "hang":
            claude._wait(behaviour.seconds if behaviour.seconds is not None else _DEFAULT_HANG_SECONDS, wake)
            behaviour = replace(behaviour, kind="valid", seconds=None)
        if behaviour.is_error:
            status, etype, message = behaviour.error_triple()
            return self._error(status, etype, message, behaviour.error_headers())
        message = claude._message(body, behaviour)
        if body.get("stream"):
            return self._send(200, _sse(message), "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
        return self._json(200, message)

    # -- /v1/messages/batches ----------------------------------------------------------------------------------

    def _batches(self, method: str, rest: list[str], body: Any) -> None:
        claude = self.claude
        host = self.headers.get("host") or f"{claude.host}:{claude.port}"
        if not rest:
            if method == "POST":
                return self._batch_create(body, host)
            if method == "GET":
                with claude._lock:
                    data = [claude._batch_object(b) for b in reversed(list(claude._batches.values()))]
                return self._json(
                    200,
                    {
                        "data": data,
                        "has_more": False,
                        "first_id": data[0]["id"] if data else None,
                        "last_id": data[-1]["id"] if data else None,
                    },
                )
            return self._error(405, "invalid_request_error", "Method Not Allowed")
        with claude._lock:
            batch = claude._batches.get(rest[0])
        if batch is None or len(rest) > 2:
            return self._error(404, "not_found_error", f"message batch {rest[0]!r} not found")
        action = rest[1] if len(rest) == 2 else None
        status, payload, content_type = 404, _error_body("not_found_error", "Not Found"), "application/json"
        with claude._lock:
            if method == "GET" and action is None:
                batch.polls += 1
                if batch.ended_at is None and (
                    batch.polls >= claude.batch_polls_until_end or batch.cancel_initiated_at
                ):
                    batch.ended_at = _now()
                status, payload = 200, claude._batch_object(batch)
            elif method == "POST" and action == "cancel":
                if batch.ended_at is None and batch.cancel_initiated_at is None:
                    batch.cancel_initiated_at = _now()
                    batch.results = [{"type": "canceled"} for _ in batch.results]
                status, payload = 200, claude._batch_object(batch)
            elif method == "DELETE" and action is None:
                if batch.ended_at is None:
                    msg = "Message batches must be ended before they can be deleted."
                    status, payload = 400, _error_body("invalid_request_error", msg)
                else:
                    del claude._batches[batch.id]
                    status, payload = 200, {"id": batch.id, "type": "message_batch_deleted"}
            elif method == "GET" and action == "results":
                if batch.ended_at is None:
                    msg = f"Message batch {batch.id} has not ended processing yet."
                    status, payload = 400, _error_body("invalid_request_error", msg)
                else:
                    lines = [
                        json.dumps({"custom_id": cid, "result": result})
                        for cid, result in zip(batch.custom_ids, batch.results, strict=True)
                    ]
                    accept = self.headers.get("accept") or ""
                    content_type = "application/x-jsonl" if "jsonl" in accept else "application/binary"
                    payload = ("\n".join(lines) + "\n").encode()
                    status = 200
        if isinstance(payload, bytes):
            return self._send(status, payload, content_type)
        if payload.get("type") == "error":
            payload["request_id"] = self._request_id
        return self._json(status, payload)

    def _batch_create(self, body: Any, host: str) -> None:
        claude = self.claude
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return self._error(400, "invalid_request_error", "requests: at least one request is required")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str) or not item["custom_id"]:
                return self._error(400, "invalid_request_error", f"requests.{i}.custom_id: Field required")
            if item["custom_id"] in seen:
                return self._error(
                    400, "invalid_request_error", f"Duplicate custom_id {item['custom_id']!r} in requests.{i}."
                )
            seen.add(item["custom_id"])
            problem = _validate_params(item.get("params"))
            if problem:
                return self._error(400, "invalid_request_error", f"requests.{i}.params.{problem}")
        results = []
        for item in requests:
            params = item["params"]
            behaviour = claude._choose(params, json.dumps(params))
            results.append(claude._batch_result(params, behaviour))
        created = _now()
        batch = _Batch(
            id=_new_id("msgbatch"),
            created_at=created,
            expires_at=created + timedelta(hours=24),
            custom_ids=[item["custom_id"] for item in requests],
            results=results,
            params=[item["params"] for item in requests],
            host=host,
        )
        if claude.batch_polls_until_end <= 0:
            batch.ended_at = created
        with claude._lock:
            claude._batches[batch.id] = batch
            obj = claude._batch_object(batch)
        return self._json(200, obj)


def _sse(message: dict[str, Any]) -> bytes:
    """``message`` as the Messages streaming event sequence."""
    text = message["content"][0]["text"]
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage}}
    start["usage"]["output_tokens"] = 1
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
    ]
    for i in range(0, len(text), 200):
        delta = {"type": "text_delta", "text": text[i : i + 200]}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Claude-API-compatible test server (runs until Ctrl-C).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each POST /v1/messages answer")
    parser.add_argument("--behaviour", default="valid", help="default behaviour, e.g. valid, rate_limit:2")
    parser.add_argument("--batch-polls-until-end", type=int, default=1)
    parser.add_argument("--seed", default="0")
    args = parser.parse_args(argv)
    server = ClaudeTestServer(
        args.host,
        args.port,
        latency=args.latency,
        default_behaviour=args.behaviour,
        batch_polls_until_end=args.batch_polls_until_end,
        seed=args.seed,
    ).start()
    print(f"Claude test server on {server.base_url} (latency {args.latency}s); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
