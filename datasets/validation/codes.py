"""Issue codes of dataset validation (SPEC §9.2), their severities and default suggestions.

Codes are stable identifiers: the API, the UI and stored reports use them, so they are never renamed. Each call
site writes its own specific message (what exactly is wrong, where); the suggestion here is the default advice
and a call site may give a more specific one.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """An error makes the line (or, for file-level codes, the file) unusable; a warning is advice only."""

    ERROR = "error"
    WARNING = "warning"


_E, _W = Severity.ERROR, Severity.WARNING

#: code → (default severity, default suggestion). Order is the order in which counts are reported.
_TABLE: dict[str, tuple[Severity, str]] = {
    "INVALID_UTF8": (_E, "Save the file as UTF-8 (most editors offer 'UTF-8' in 'Save as' / 'Encoding')."),
    "INVALID_JSON": (_E, "Make each line one complete JSON object; check quotes, commas and brackets."),
    "NOT_AN_OBJECT": (_E, "Use a JSON object ({...}) here."),
    "LINE_TOO_LONG": (_E, "Split the conversation into shorter examples; one line may hold at most 4 MiB."),
    "MIXED_FORMATS": (_E, "Use one format for every line of a file; convert or remove the odd lines."),
    "MISSING_MESSAGES": (_E, "Give every example its list of messages."),
    "EMPTY_MESSAGES": (_E, "Add the conversation's messages or remove the line."),
    "UNKNOWN_ROLE": (_E, "Use one of the roles 'system', 'user' or 'assistant'."),
    "SYSTEM_NOT_FIRST": (_E, "Move the system message to the start of the conversation, or remove it."),
    "ROLES_NOT_ALTERNATING": (
        _E,
        "After the optional system message, start with 'user' and alternate user/assistant; merge or remove "
        "consecutive messages of the same role.",
    ),
    "CONTENT_NOT_STRING": (_E, "Make the content a plain string (join parts of a list into one string)."),
    "EMPTY_CONTENT": (_E, "Fill in the message text or remove the message."),
    "NO_ASSISTANT_MESSAGE": (_E, "Add at least one assistant reply; only assistant messages are trained on."),
    "LAST_NOT_ASSISTANT": (_E, "End the conversation with an assistant reply, or drop the trailing messages."),
    "INVALID_WEIGHT": (_E, "Use weight 0 or 1 (integers) and only on assistant messages, or leave it out."),
    "MISSING_FIELD": (_E, "Add the required field."),
    "EMPTY_FILE": (_E, "Upload a file with one JSON example per line."),
    "TOO_FEW_EXAMPLES": (_E, "Add more valid examples, or fix the lines reported above."),
    "FILE_TOO_LARGE": (_E, "Split the dataset into smaller files, or remove examples."),
    "UNKNOWN_KEY": (_W, "Check the key's spelling; unknown keys are ignored for training."),
    "BOM_PRESENT": (_W, "Save the file as UTF-8 without BOM; the BOM was ignored."),
    "CRLF_LINE_ENDINGS": (_W, "Save the file with Unix (LF) line endings; CR characters were ignored."),
    "DUPLICATE_EXAMPLE": (_W, "Remove repeated examples; they weight the model towards them."),
    "EXCEEDS_CONTEXT": (
        _W,
        "Shorten the conversation or split it into several examples; tokens past the context are truncated.",
    ),
}

#: Every code and its default severity.
CODES: dict[str, Severity] = {code: severity for code, (severity, _) in _TABLE.items()}

#: Default, actionable suggestion per code.
SUGGESTIONS: dict[str, str] = {code: suggestion for code, (_, suggestion) in _TABLE.items()}

#: Per-format severity exceptions (see the package docstring): the legacy ``turns`` format accepted
#: prompt-only conversations, so these two are warnings there.
FORMAT_SEVERITY: dict[str, dict[str, Severity]] = {
    "turns": {"NO_ASSISTANT_MESSAGE": Severity.WARNING, "LAST_NOT_ASSISTANT": Severity.WARNING},
}
