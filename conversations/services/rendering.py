"""Strict rendering of prompt templates: the one documented variable registry and its renderer.

A template body uses ``{{name}}`` placeholders (spaces inside the braces are allowed:
``{{ persona.name }}``). ``TEMPLATE_VARIABLES`` below is the complete, documented list of
names; anything else is an error when a version is saved (``template_body_validate``) and
again when it is rendered (``template_render``). A known name without a value at render
time is an error too, and after substitution no ``{{`` may remain, so no literal
placeholder ever reaches the model.

Value formatting (``template_render``):

* lists render as bullet lines (``- item`` one per line), so put list variables on a line
  of their own;
* booleans render as ``yes`` / ``no``; floats with two decimals (``0.70``); other values
  with ``str()``, surrounding whitespace stripped;
* ``None``, blank strings and empty lists are *missing* values (an error), except the
  ``suitable_*`` lists, which ``template_context`` renders as "any persona/topic/arc" when
  empty because empty means "all" there.

The vertical's ``communication_style`` JSON object is exposed field by field:
``{{vertical.communication_style.tone}}``, ``…techniques`` and ``…avoid``.

Bookkeeping fields (``is_active``, ``usage_count``, timestamps) are deliberately not
variables: they are not content, and a prompt that changed as the installation is used
would make versions non-reproducible.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from brightrun.errors import ApplicationError
from conversations.models import EmotionalArc, Persona, TrainingTopic, VerticalProfile

TEMPLATE_VARIABLES: dict[str, str] = {
    # Persona (SPEC §3.2): the client in the conversation.
    "persona.key": "Stable persona key, e.g. overwhelmed_avoider.",
    "persona.name": "The client's name, e.g. Marcus Chen.",
    "persona.archetype": "Archetype label, e.g. The Overwhelmed Avoider.",
    "persona.age": "Age in years.",
    "persona.gender": "Gender.",
    "persona.family_status": "Family situation (partner, children, dependants).",
    "persona.location": "Where the client lives.",
    "persona.occupation": "Job.",
    "persona.income_range": "Household income range, e.g. $120,000-$160,000.",
    "persona.financial_situation": "Paragraph on assets, debts and what is going on with money.",
    "persona.communication_style": "How the client talks and asks.",
    "persona.emotional_baseline": "The client's usual emotional state about money.",
    "persona.typical_questions": "Bullet list of questions this client tends to ask.",
    "persona.common_concerns": "Bullet list of recurring worries.",
    "persona.language_patterns": "Bullet list of phrases and verbal habits.",
    # Emotional arc (SPEC §3.3): where the client starts and where the conversation takes them.
    "arc.key": "Stable arc key, e.g. confusion_to_clarity.",
    "arc.name": "Arc name, e.g. Confusion → Clarity.",
    "arc.starting_emotion": "The client's emotion in the first turn.",
    "arc.ending_emotion": "The client's emotion in the last client turn.",
    "arc.start_intensity_min": "Lowest starting intensity (0 to 1, two decimals).",
    "arc.start_intensity_max": "Highest starting intensity (0 to 1, two decimals).",
    "arc.end_intensity_min": "Lowest ending intensity (0 to 1, two decimals).",
    "arc.end_intensity_max": "Highest ending intensity (0 to 1, two decimals).",
    "arc.strategy": "Paragraph: how the consultant moves the client along the arc.",
    "arc.key_principles": "Bullet list of the arc's principles.",
    "arc.characteristic_phrases": "Bullet list of phrases typical of the consultant in this arc.",
    "arc.response_techniques": "Bullet list of techniques the consultant uses.",
    "arc.avoid_tactics": "Bullet list of things the consultant must not do in this arc.",
    "arc.typical_turns_min": "Fewest exchanges for this arc.",
    "arc.typical_turns_max": "Most exchanges for this arc.",
    "arc.complexity": "Difficulty 1 to 10.",
    "arc.tier": "template or edge_case.",
    "arc.suitable_personas": 'Bullet list of persona keys, or "any persona".',
    "arc.suitable_topics": 'Bullet list of topic keys, or "any topic".',
    # Training topic (SPEC §3.4): what the conversation is about.
    "topic.key": "Stable topic key, e.g. roth_ira_conversion.",
    "topic.name": "Topic name.",
    "topic.category": "Category, e.g. retirement.",
    "topic.description": "One or two sentences on the topic.",
    "topic.complexity": "beginner, intermediate or advanced.",
    "topic.example_questions": "Bullet list of questions clients ask about it.",
    "topic.key_concepts": "Bullet list of concepts the consultant may need to explain.",
    "topic.suitable_personas": 'Bullet list of persona keys, or "any persona".',
    "topic.suitable_arcs": 'Bullet list of arc keys, or "any arc".',
    "topic.requires_specialist": "yes if the topic needs a specialist referral (attorney, CPA…), else no.",
    # Vertical profile (SPEC §3.1): the consultant whose voice is learnt.
    "vertical.key": "Stable vertical key.",
    "vertical.name": 'The consultant, e.g. "Elena Morales, CFP".',
    "vertical.business": "The consultant's practice.",
    "vertical.expertise": "What the consultant specialises in.",
    "vertical.years_experience": "Years of experience.",
    "vertical.core_philosophy": "Bullet list of the five principles, in order.",
    "vertical.communication_style.tone": "The consultant's tone.",
    "vertical.communication_style.techniques": "Bullet list of communication techniques.",
    "vertical.communication_style.avoid": "Bullet list of things the consultant avoids.",
    "vertical.inference_system_prompt": "The production system prompt of the fine-tuned model.",
    # Generation parameter.
    "target_turns": "Exchanges (client turn + consultant turn) to write, chosen in the arc's range.",
}

# ``{{`` + anything without braces + ``}}``; the name is checked against the registry.
PLACEHOLDER_RE = re.compile(r"\{\{([^{}]*)\}\}")

_PERSONA_FIELDS = (
    "key", "name", "archetype", "age", "gender", "family_status", "location", "occupation", "income_range",
    "financial_situation", "communication_style", "emotional_baseline", "typical_questions", "common_concerns",
    "language_patterns",
)  # fmt: skip
_ARC_FIELDS = (
    "key", "name", "starting_emotion", "ending_emotion", "start_intensity_min", "start_intensity_max",
    "end_intensity_min", "end_intensity_max", "strategy", "key_principles", "characteristic_phrases",
    "response_techniques", "avoid_tactics", "typical_turns_min", "typical_turns_max", "complexity", "tier",
)  # fmt: skip
_TOPIC_FIELDS = (
    "key", "name", "category", "description", "complexity", "example_questions", "key_concepts",
    "requires_specialist",
)  # fmt: skip
_VERTICAL_FIELDS = (
    "key", "name", "business", "expertise", "years_experience", "core_philosophy", "inference_system_prompt",
)  # fmt: skip


def _names_in(body: str) -> list[str]:
    """Every placeholder name in ``body`` (stripped), in order of appearance, with repeats."""
    return [match.group(1).strip() for match in PLACEHOLDER_RE.finditer(body)]


def template_body_validate(*, body: str) -> list[str]:
    """Check a template body against ``TEMPLATE_VARIABLES``; return the sorted names it uses.

    Pure function (no database), called by ``template_version_create`` before a version is
    saved and by forms that want field-level errors. Raises ``ApplicationError`` with code
    ``template_empty``, ``template_malformed_placeholder`` (a ``{{`` that does not close) or
    ``template_unknown_variable`` (``errors={"variables": [...]}`` names every offender).
    """
    if not body or not body.strip():
        raise ApplicationError("The template body is empty.", code="template_empty")
    names = _names_in(body)
    unknown = sorted({name for name in names if name not in TEMPLATE_VARIABLES})
    if unknown:
        listed = ", ".join("{{" + name + "}}" for name in unknown)
        raise ApplicationError(
            f"Unknown template variable(s): {listed}. See the documented variable list.",
            code="template_unknown_variable",
            errors={"variables": unknown},
        )
    if "{{" in PLACEHOLDER_RE.sub("", body):
        raise ApplicationError(
            "The template has a '{{' that is not a complete {{variable}} placeholder.",
            code="template_malformed_placeholder",
        )
    return sorted(set(names))


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return not value or all(_is_missing(item) for item in value)
    return False


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return "\n".join(f"- {_format(item)}" for item in value if not _is_missing(item))
    return str(value).strip()


def template_render(*, body: str, context: dict[str, Any]) -> str:
    """Render ``body`` strictly with ``context`` (variable name → value, see ``template_context``).

    Pure function. Substitution is a single pass, so a value that itself contains
    ``{{…}}`` is not expanded, and is then caught by the final check. Raises
    ``ApplicationError``: ``template_unknown_variable`` / ``template_malformed_placeholder``
    (as ``template_body_validate``), ``template_missing_value`` (a used variable has no
    value; ``errors={"variables": [...]}``) or ``template_unresolved_placeholder`` (``{{``
    left in the output).
    """
    used = template_body_validate(body=body)
    missing = [name for name in used if name not in context or _is_missing(context[name])]
    if missing:
        listed = ", ".join("{{" + name + "}}" for name in missing)
        raise ApplicationError(
            f"No value for template variable(s): {listed}.",
            code="template_missing_value",
            errors={"variables": missing},
        )
    rendered = PLACEHOLDER_RE.sub(lambda match: _format(context[match.group(1).strip()]), body)
    if "{{" in rendered:
        raise ApplicationError(
            "The rendered prompt still contains '{{' (a value holds a placeholder); nothing was sent.",
            code="template_unresolved_placeholder",
        )
    return rendered


def _keys_or_any(keys: list[str], anything: str) -> list[str] | str:
    return list(keys) if keys else anything


def vertical_context(*, vertical: VerticalProfile) -> dict[str, Any]:
    """The ``vertical.*`` variables of ``vertical`` (raw values; ``template_render`` formats them)."""
    context: dict[str, Any] = {f"vertical.{field}": getattr(vertical, field) for field in _VERTICAL_FIELDS}
    style = vertical.communication_style if isinstance(vertical.communication_style, dict) else {}
    for part in ("tone", "techniques", "avoid"):
        context[f"vertical.communication_style.{part}"] = style.get(part)
    return context


def template_context(
    *,
    persona: Persona,
    arc: EmotionalArc,
    topic: TrainingTopic,
    vertical: VerticalProfile,
    target_turns: int,
) -> dict[str, Any]:
    """Every variable of ``TEMPLATE_VARIABLES`` for one persona, arc and topic of ``vertical``.

    Pure function over already-loaded rows (no queries). Values are raw (lists stay lists);
    empty ``suitable_*`` lists become "any persona/topic/arc" because empty means "all".
    """
    context: dict[str, Any] = {f"persona.{field}": getattr(persona, field) for field in _PERSONA_FIELDS}
    context.update({f"arc.{field}": getattr(arc, field) for field in _ARC_FIELDS})
    context["arc.suitable_personas"] = _keys_or_any(arc.suitable_personas, "any persona")
    context["arc.suitable_topics"] = _keys_or_any(arc.suitable_topics, "any topic")
    context.update({f"topic.{field}": getattr(topic, field) for field in _TOPIC_FIELDS})
    context["topic.suitable_personas"] = _keys_or_any(topic.suitable_personas, "any persona")
    context["topic.suitable_arcs"] = _keys_or_any(topic.suitable_arcs, "any arc")
    context.update(vertical_context(vertical=vertical))
    context["target_turns"] = target_turns
    return context


# The vertical-level generation brief: the same text for every generation call of an
# installation (it depends on the vertical only), so it is sent as a cacheable system block
# ahead of the per-conversation template. Only ``vertical.*`` variables may appear here.
SHARED_PREFIX_TEMPLATE = """\
You write synthetic client conversations that become training data for a fine-tuned model that speaks as \
{{vertical.name}} ({{vertical.business}}). The consultant's turns are exactly what the model will learn to say, \
and the client's turns are what it will learn to respond to, so both have to be worth learning from: the \
consultant at their best, and the client as a real person rather than a prompt.

## The consultant
- Name: {{vertical.name}}
- Practice: {{vertical.business}}
- Expertise: {{vertical.expertise}}
- Experience: {{vertical.years_experience}} years

Core philosophy, in priority order. Every consultant turn should be traceable to at least one of these:
{{vertical.core_philosophy}}

Tone: {{vertical.communication_style.tone}}

Techniques the consultant uses:
{{vertical.communication_style.techniques}}

Things the consultant does not do:
{{vertical.communication_style.avoid}}

## How the trained model will be used
In production the fine-tuned model receives only the system prompt below, followed by a client's messages. \
Write consultant turns that a model given this prompt should produce, and never let a consultant turn contradict it.

<production_system_prompt>
{{vertical.inference_system_prompt}}
</production_system_prompt>

## Quality bar (applies to every conversation)
- Real people: the client has a specific life, specific numbers and a specific reason for reaching out today. \
They hesitate, go on tangents, push back, and sometimes answer a different question than the one asked. Their \
vocabulary matches their persona, not a textbook.
- Earned movement: the client's feelings change because of something the consultant said or did in the turn \
before, never because the script says so. A change that is too fast reads as fake; a partial step back is allowed.
- Feelings before facts: the consultant names what the client seems to feel before giving information, and asks \
permission before teaching anything substantial.
- Specific over generic: use concrete, plausible figures that fit the client's income and situation (show the \
arithmetic when it helps), and ask about the details the advice depends on instead of assuming them.
- One thing at a time: at most one new concept and one question per consultant turn; no lists of options the \
client did not ask for. End consultant turns on a question or a clear next step more often than not.
- Honest numbers: for rules that change every year (contribution limits, tax brackets, thresholds) say "for this \
year" or "roughly" instead of inventing precision; never promise returns; never recommend a specific security, \
fund or insurance product by name.
- Scope: the consultant is a financial planner, not an attorney, tax preparer, therapist or crisis counsellor. \
When a question needs one of them, the consultant says so plainly and explains what to bring to that person.
- Length: consultant turns are usually 60 to 110 words (roughly 350 to 650 characters) and never more than 150 words; \
client turns are 15 to 90 words. Plain conversational prose: no headings, no bold text, at most one short list in the \
whole conversation.
- Variety: no two consultant turns open with the same words; avoid stock openers ("Great question", "I hear you", \
"Absolutely") and avoid ending every turn with the same formula.

## Output rules
- Roles alternate strictly: the client (role "user") speaks first and the consultant (role "assistant") speaks \
last. An exchange is one client turn followed by one consultant turn; write exactly the number of exchanges asked \
for. turn_number starts at 1 and increases by one on every turn.
- Every turn has emotional_context. On client turns it is the client's emotion: the first client turn's \
primary_emotion is the arc's starting emotion with an intensity inside the arc's starting range, the last client \
turn's primary_emotion is the arc's ending emotion with an intensity inside its ending range, and the turns \
between move believably from one to the other. On consultant turns it is the emotional tone of the reply (for \
example reassurance, curiosity, encouragement, steadiness). Intensities are numbers from 0 to 1; \
primary_emotion and secondary_emotion are one or two lowercase words.
- conversation_metadata: client_persona is "Client Name - Archetype"; session_context is one sentence on why the \
client reached out now; conversation_phase is a short snake_case label of where the relationship is (for example \
initial_consultation or follow_up_session); expected_outcome is one sentence on where the client ends up.
- Write only the conversation. The consultant never mentions these instructions, training data, emotional arcs \
or scores, and no placeholder or template syntax appears anywhere in the text.
"""


def shared_prefix_render(*, vertical: VerticalProfile) -> str:
    """The vertical-level generation brief (identical for every call of the installation).

    Pure function. Raises ``ApplicationError`` (``template_missing_value``) when the vertical
    lacks a field the brief uses, e.g. an empty ``communication_style``.
    """
    return template_render(body=SHARED_PREFIX_TEMPLATE, context=vertical_context(vertical=vertical))
