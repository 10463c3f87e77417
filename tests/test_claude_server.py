"""The loopback Claude API driven by the real ``anthropic`` SDK over HTTP (no database needed)."""

# ruff: noqa: F811 -- the fixtures are imported below, so every test argument named after one "redefines" it

from __future__ import annotations

import difflib
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.claude_fixtures import claude_server, claude_server_session  # noqa: F401
from tests.claude_server import SPEND_LIMIT_MESSAGE, Behaviour, ClaudeTestServer, parse_behaviour

MODEL = "claude-test-model"
SCHEMA_FORMAT = {
    "format": {
        "type": "json_schema",
        "schema": {"type": "object", "properties": {"turns": {"type": "array"}}, "required": ["turns"]},
    }
}


@pytest.fixture
def client(claude_server):
    sdk = anthropic.Anthropic(api_key="sk-ant-test", base_url=claude_server.base_url, max_retries=0, timeout=10)
    yield sdk
    sdk.close()


def make_client(server: ClaudeTestServer, **kwargs) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 10)
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=server.base_url, **kwargs)


def create(client: anthropic.Anthropic, prompt: str = "Write the conversation.", **kwargs):
    kwargs.setdefault("max_tokens", 4000)
    kwargs.setdefault("model", MODEL)
    return client.messages.create(messages=[{"role": "user", "content": prompt}], **kwargs)


def conversation(message) -> dict:
    assert message.content[0].type == "text"
    return json.loads(message.content[0].text)


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.?!])\s+", text.strip())


def assert_well_formed(conv: dict, exchanges: int) -> None:
    meta = conv["conversation_metadata"]
    for key in ("client_persona", "session_context", "conversation_phase", "expected_outcome"):
        assert isinstance(meta[key], str) and meta[key]
    turns = conv["turns"]
    assert len(turns) == 2 * exchanges
    assert [t["turn_number"] for t in turns] == list(range(1, 2 * exchanges + 1))
    assert [t["role"] for t in turns] == ["user", "assistant"] * exchanges
    for turn in turns:
        emotion = turn["emotional_context"]
        assert isinstance(emotion["primary_emotion"], str)
        assert isinstance(emotion.get("secondary_emotion", ""), str)
        assert 0 <= emotion["intensity"] <= 1
        assert all(s[-1] in ".?!" for s in sentences(turn["content"])), turn["content"]
        if turn["role"] == "assistant":
            assert 100 <= len(turn["content"]) <= 400, turn["content"]


# -- valid conversations --------------------------------------------------------------------------------------


def test_valid_conversation_parses_with_alternating_roles(client, claude_server):
    message = create(client, output_config=SCHEMA_FORMAT)

    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    conv = conversation(message)
    assert_well_formed(conv, exchanges=3)
    assert conv["conversation_metadata"]["client_persona"] == "Test Client"
    assert message._request_id and message._request_id.startswith("req_")


@pytest.mark.parametrize(
    ("system", "prompt", "expected"),
    [
        ("Generate exactly 5 exchanges between client and consultant.", "Go.", 5),
        ("You write dialogues.", "target_turns: 2", 2),
        ("You write dialogues.", 'Parameters: {"target_turns": 4}', 4),
        ("Write 7 exchanges.", "Go.", 7),
        ("Write exactly three exchanges.", "Go.", 3),
        ("Write exactly 25 exchanges.", "Go.", 10),
        ("Write exactly 0 exchanges.", "Go.", 1),
        ("Write a dialogue.", "Go.", 3),
    ],
)
def test_exchange_count_comes_from_the_request(client, system, prompt, expected):
    message = create(client, prompt, system=system)
    assert_well_formed(conversation(message), exchanges=expected)


def test_exchange_count_read_from_system_blocks(client):
    system = [{"type": "text", "text": "Role: writer."}, {"type": "text", "text": "Produce exactly 6 exchanges."}]
    assert_well_formed(conversation(create(client, system=system)), exchanges=6)


@pytest.mark.parametrize(
    ("text", "persona"),
    [
        ("Persona: Maria Lopez\nexactly 2 exchanges", "Maria Lopez"),
        ("The persona name: Dev Patel.", "Dev Patel"),
        ('{"persona_name": "Ana Ruiz", "target_turns": 2}', "Ana Ruiz"),
        ("**Persona:** Sam Carter", "Sam Carter"),
    ],
)
def test_persona_is_echoed(client, text, persona):
    conv = conversation(create(client, text))
    assert conv["conversation_metadata"]["client_persona"] == persona


def test_responses_vary_between_requests(client):
    texts = [conversation(create(client, "Persona: Jo\nexactly 3 exchanges"))["turns"] for _ in range(6)]
    bodies = [" ".join(t["content"] for t in turns) for turns in texts]
    for a, b in itertools.combinations(bodies, 2):
        assert difflib.SequenceMatcher(None, a, b).ratio() < 0.8


def test_usage_is_plausible(client):
    prompt = "Write a financial planning dialogue. " * 20
    message = create(client, prompt, system="You are a dialogue writer.")
    usage = message.usage
    prompt_chars = len("You are a dialogue writer.") + len(prompt)
    assert abs(usage.input_tokens - prompt_chars / 4) <= 5
    assert abs(usage.output_tokens - len(message.content[0].text) / 4) <= 2
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_prompt_caching_creates_then_reads(client):
    cached = {"type": "text", "text": "Long shared instructions. " * 40, "cache_control": {"type": "ephemeral"}}
    prefix_tokens = (len(cached["text"]) + 3) // 4

    first = create(client, "first", system=[cached, {"type": "text", "text": "exactly 2 exchanges"}]).usage
    second = create(client, "second, different", system=[cached]).usage
    other = create(client, "third", system=[{**cached, "text": "Other instructions. " * 40}]).usage

    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix_tokens, 0)
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix_tokens
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix_tokens)
    assert other.cache_creation_input_tokens > 0 and other.cache_read_input_tokens == 0
    assert 1 <= first.input_tokens < prefix_tokens  # the uncached remainder only


def test_reset_forgets_the_prompt_cache(client, claude_server):
    system = [{"type": "text", "text": "Cache me please. " * 10, "cache_control": {"type": "ephemeral"}}]
    assert create(client, system=system).usage.cache_creation_input_tokens > 0
    claude_server.reset()
    assert create(client, system=system).usage.cache_creation_input_tokens > 0


def test_requests_are_recorded(client, claude_server):
    create(client, "Persona: Kim", system="sys", output_config=SCHEMA_FORMAT, max_tokens=1234)

    [record] = claude_server.requests
    assert record["method"] == "POST" and record["path"] == "/v1/messages"
    assert record["headers"]["authorization"] == "Bearer sk-ant-test"  # SDK 2.x: no x-api-key header
    assert record["api_key"] == "sk-ant-test"
    assert "anthropic-version" in record["headers"]
    assert record["body"]["max_tokens"] == 1234 and record["body"]["model"] == MODEL
    assert record["body"]["output_config"] == SCHEMA_FORMAT
    assert record["body"]["system"] == "sys"
    assert record["behaviour"] == "valid"
    assert abs(record["time"] - time.time()) < 5
    assert claude_server.count("/v1/messages") == 1 and len(claude_server.message_requests) == 1


def test_streaming_answers_the_same_message(client, claude_server):
    claude_server.enqueue("max_tokens")
    with client.messages.stream(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "exactly 2 exchanges"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 50

    with client.messages.stream(
        model=MODEL, max_tokens=4000, messages=[{"role": "user", "content": "exactly 2 exchanges"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert_well_formed(json.loads(text), exchanges=2)


def test_count_tokens(client):
    result = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x" * 400}])
    assert result.input_tokens == 100


# -- faulty answers -------------------------------------------------------------------------------------------


def test_truncated_turn_ends_with_a_lone_backslash(client, claude_server):
    claude_server.enqueue("truncated")
    message = create(client, "exactly 3 exchanges")
    assert message.stop_reason == "end_turn"
    turns = conversation(message)["turns"]  # still valid JSON and shape
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3
    cut = turns[3]["content"]
    assert cut.endswith("\\") and not cut.endswith("\\\\")
    assert cut[-2].isalpha()  # cut mid-word
    assert not any(t["content"].endswith("\\") for i, t in enumerate(turns) if i != 3)


def test_truncated_with_one_exchange_cuts_the_only_assistant_turn(client, claude_server):
    claude_server.enqueue("truncated")
    turns = conversation(create(client, "exactly 1 exchange"))["turns"]
    assert turns[1]["content"].endswith("\\")


def test_max_tokens_cuts_the_json(client, claude_server):
    claude_server.enqueue("max_tokens")
    message = create(client, max_tokens=321)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 321
    assert message.content[0].text.startswith('{"conversation_metadata"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.content[0].text)


def test_schema_violation_default_drops_roles(client, claude_server):
    claude_server.enqueue("schema_violation")
    message = create(client)
    assert message.stop_reason == "end_turn"
    turns = conversation(message)["turns"]
    assert turns and all("role" not in t for t in turns)


def test_schema_violation_roles_variant_breaks_alternation(client, claude_server):
    claude_server.enqueue("schema_violation:roles")
    roles = [t["role"] for t in conversation(create(client))["turns"]]
    assert roles[:2] == ["user", "user"]


def test_invalid_json(client, claude_server):
    claude_server.enqueue("invalid_json")
    message = create(client)
    assert message.stop_reason == "end_turn"
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.content[0].text)
    assert "Consultant:" in message.content[0].text


# -- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "exc_class", "status", "error_type"),
    [
        ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("overloaded", anthropic.InternalServerError, 529, "overloaded_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
        ("unauthorized", anthropic.AuthenticationError, 401, "authentication_error"),
        ("spend_limit", anthropic.BadRequestError, 400, "invalid_request_error"),
    ],
)
def test_error_behaviours_raise_the_sdk_exception(client, claude_server, behaviour, exc_class, status, error_type):
    claude_server.enqueue(behaviour)
    with pytest.raises(exc_class) as info:
        create(client)
    err = info.value
    assert err.status_code == status
    assert err.type == error_type
    assert err.body["type"] == "error" and err.body["error"]["type"] == error_type
    assert err.request_id and err.request_id.startswith("req_")
    assert len(claude_server.message_requests) == 1


def test_overloaded_is_the_sdk_overloaded_error(client, claude_server):
    claude_server.enqueue("overloaded")
    with pytest.raises(anthropic.OverloadedError):
        create(client)


def test_spend_limit_message(client, claude_server):
    claude_server.enqueue("spend_limit")
    with pytest.raises(anthropic.BadRequestError) as info:
        create(client)
    assert info.value.api_message == SPEND_LIMIT_MESSAGE
    assert "credit balance is too low" in str(info.value)


@pytest.mark.parametrize(
    ("behaviour", "header"),
    [(Behaviour("rate_limit", retry_after=2), "2"), ("rate_limit:0.5", "0.5"), ("rate_limit", "1")],
)
def test_rate_limit_retry_after_header(client, claude_server, behaviour, header):
    claude_server.enqueue(behaviour)
    with pytest.raises(anthropic.RateLimitError) as info:
        create(client)
    assert info.value.response.headers["retry-after"] == header


def test_sdk_retries_overloaded_then_succeeds(claude_server):
    claude_server.enqueue("overloaded", "valid")
    with make_client(claude_server, max_retries=2) as sdk:
        message = create(sdk)
    assert message.stop_reason == "end_turn"
    first, second = claude_server.message_requests
    assert (first["behaviour"], second["behaviour"]) == ("overloaded", "valid")
    assert second["headers"]["x-stainless-retry-count"] == "1"


def test_sdk_waits_for_retry_after(claude_server):
    claude_server.enqueue(Behaviour("rate_limit", retry_after=1), "valid")
    with make_client(claude_server, max_retries=1) as sdk:
        create(sdk)
    first, second = claude_server.message_requests
    assert second["time"] - first["time"] >= 0.95


def test_x_should_retry_false_stops_sdk_retries(claude_server):
    claude_server.enqueue(Behaviour("overloaded", should_retry=False), "valid")
    with make_client(claude_server, max_retries=2) as sdk, pytest.raises(anthropic.OverloadedError) as info:
        create(sdk)
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(claude_server.message_requests) == 1


def test_custom_error_behaviour(client, claude_server):
    claude_server.enqueue(Behaviour("error", status=503, error_type="api_error", message="maintenance"))
    with pytest.raises(anthropic.InternalServerError) as info:
        create(client)
    assert info.value.status_code == 503 and info.value.api_message == "maintenance"


def test_hang_times_out_the_client(claude_server):
    claude_server.enqueue(Behaviour("hang", seconds=5))
    started = time.monotonic()
    with make_client(claude_server, timeout=0.3) as sdk, pytest.raises(anthropic.APITimeoutError):
        create(sdk)
    assert time.monotonic() - started < 3
    claude_server.reset()  # wakes the hanging handler
    with make_client(claude_server) as sdk:
        assert create(sdk).stop_reason == "end_turn"


def test_short_hang_is_just_slow(client, claude_server):
    claude_server.enqueue("hang:0.2")
    started = time.monotonic()
    assert create(client).stop_reason == "end_turn"
    assert time.monotonic() - started >= 0.2


def test_invalid_bodies_and_missing_key_are_rejected(client, claude_server):
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body={"model": MODEL, "messages": []}, cast_to=object)
    assert "max_tokens" in info.value.api_message
    response = httpx2.post(f"{claude_server.base_url}/v1/messages", content=b"{not json", headers={"x-api-key": "k"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = httpx2.post(f"{claude_server.base_url}/v1/messages", json={"model": MODEL})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_unknown_path_is_404(client):
    with pytest.raises(anthropic.NotFoundError) as info:
        client.get("/v1/nope", cast_to=object)
    assert info.value.body["error"]["type"] == "not_found_error"


# -- scripting ------------------------------------------------------------------------------------------------


def test_queue_goes_before_rules_before_default(client, claude_server):
    claude_server.add_rule("MAGIC-WORD", "server_error", times=1)
    claude_server.enqueue("unauthorized")

    with pytest.raises(anthropic.AuthenticationError):
        create(client, "MAGIC-WORD")  # queue first
    with pytest.raises(anthropic.InternalServerError):
        create(client, "MAGIC-WORD")  # then the rule, once
    assert create(client, "MAGIC-WORD").stop_reason == "end_turn"  # rule used up
    claude_server.default_behaviour = "invalid_json"
    with pytest.raises(json.JSONDecodeError):
        conversation(create(client, "anything"))
    assert [r["behaviour"] for r in claude_server.message_requests] == [
        "unauthorized",
        "server_error",
        "valid",
        "invalid_json",
    ]


def test_rule_without_times_always_applies_and_matches_plain_text(client, claude_server):
    claude_server.add_rule('Persona: "Broke" Bob\nexactly', "spend_limit")
    for _ in range(3):
        with pytest.raises(anthropic.BadRequestError):
            create(client, 'Persona: "Broke" Bob\nexactly 2 exchanges')
    assert create(client, "Persona: Alice").stop_reason == "end_turn"


def test_parse_behaviour():
    assert parse_behaviour("rate_limit:2") == Behaviour("rate_limit", retry_after=2.0)
    assert parse_behaviour("hang:1.5").seconds == 1.5
    assert parse_behaviour("error:502").status == 502
    behaviour = Behaviour("overloaded")
    assert parse_behaviour(behaviour) is behaviour
    with pytest.raises(ValueError, match="unknown behaviour"):
        parse_behaviour("explode")
    with pytest.raises(ValueError):
        parse_behaviour("valid:3")


def test_default_behaviour_is_validated_when_set(client, claude_server):
    with pytest.raises(ValueError, match="unknown behaviour"):
        claude_server.default_behaviour = "overloded"
    claude_server.default_behaviour = "server_error"
    assert claude_server.default_behaviour == Behaviour("server_error")
    with pytest.raises(anthropic.InternalServerError):
        create(client)


def test_latency_delays_and_overlaps(client, claude_server):
    claude_server.latency = 0.4
    started = time.monotonic()
    create(client)
    assert time.monotonic() - started >= 0.4

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: create(client).stop_reason, range(6)))
    assert results == ["end_turn"] * 6
    assert time.monotonic() - started < 1.6  # concurrent, not 6 x 0.4 s


def test_concurrent_requests_consume_the_queue_once_each(client, claude_server):
    claude_server.enqueue(*["server_error"] * 8)

    def attempt(_):
        try:
            create(client)
        except anthropic.InternalServerError:
            return "error"
        return "ok"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("error") == 8 and outcomes.count("ok") == 12
    assert len(claude_server.message_requests) == 20 and not claude_server.queued


# -- message batches ------------------------------------------------------------------------------------------


def batch_request(custom_id: str, prompt: str = "exactly 2 exchanges") -> dict:
    return {
        "custom_id": custom_id,
        "params": {"model": MODEL, "max_tokens": 2000, "messages": [{"role": "user", "content": prompt}]},
    }


def test_batch_round_trip_with_an_errored_result(client, claude_server):
    claude_server.batch_polls_until_end = 2
    claude_server.add_rule("FAIL-THIS-ONE", "overloaded")
    batch = client.messages.batches.create(
        requests=[batch_request("a"), batch_request("b", "FAIL-THIS-ONE"), batch_request("c", "exactly 4 exchanges")]
    )
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.ended_at is None and batch.cancel_initiated_at is None and batch.archived_at is None
    assert batch.request_counts.processing == 3 and batch.request_counts.succeeded == 0
    assert batch.expires_at > batch.created_at

    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        client.messages.batches.results(batch.id)  # its retrieve is poll 1 of 2

    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.results_url == f"{claude_server.base_url}/v1/messages/batches/{batch.id}/results"
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 2, 1, 0, 0)

    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"a", "b", "c"}
    assert results["a"].type == "succeeded" and results["c"].type == "succeeded"
    assert_well_formed(json.loads(results["a"].message.content[0].text), exchanges=2)
    assert_well_formed(json.loads(results["c"].message.content[0].text), exchanges=4)
    assert results["a"].message.usage.service_tier == "batch"
    assert results["b"].type == "errored"
    assert results["b"].error.type == "error" and results["b"].error.error.type == "overloaded_error"

    [results_request] = claude_server.requests_to(f"/v1/messages/batches/{batch.id}/results")
    assert results_request["headers"]["accept"] == "application/binary"
    assert results_request["api_key"] == "sk-ant-test"


def test_batch_polls_until_end_is_read_at_each_retrieve(client, claude_server):
    batch = client.messages.batches.create(requests=[batch_request("a")])
    claude_server.batch_polls_until_end = 3
    assert [client.messages.batches.retrieve(batch.id).processing_status for _ in range(3)] == [
        "in_progress",
        "in_progress",
        "ended",
    ]
    claude_server.batch_polls_until_end = 1  # an ended batch stays ended
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"


def test_batch_ends_immediately_with_zero_polls(client, claude_server):
    claude_server.batch_polls_until_end = 0
    claude_server.enqueue("max_tokens", Behaviour("hang", seconds=1))
    batch = client.messages.batches.create(requests=[batch_request("x"), batch_request("y"), batch_request("z")])
    assert batch.processing_status == "ended" and batch.results_url
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["x"].type == "succeeded" and results["x"].message.stop_reason == "max_tokens"
    assert results["y"].type == "expired"
    assert results["z"].type == "succeeded"


def test_batch_cancel(client, claude_server):
    claude_server.batch_polls_until_end = 5
    batch = client.messages.batches.create(requests=[batch_request("a"), batch_request("b")])
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}


def test_batch_list_and_delete(client, claude_server):
    first = client.messages.batches.create(requests=[batch_request("a")])
    second = client.messages.batches.create(requests=[batch_request("a")])
    assert [b.id for b in client.messages.batches.list()] == [second.id, first.id]
    client.messages.batches.retrieve(first.id)
    assert client.messages.batches.delete(first.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(first.id)


def test_batch_unknown_id_and_bad_requests(client):
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.batches.retrieve("msgbatch_nope")
    assert info.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[batch_request("same"), batch_request("same")])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": {"model": MODEL}}])


# -- fixtures and CLI -----------------------------------------------------------------------------------------


def test_fixture_points_settings_and_env_at_the_server(claude_server, monkeypatch):
    import os

    from django.conf import settings

    assert settings.ANTHROPIC_BASE_URL == claude_server.base_url
    assert settings.ANTHROPIC_API_KEY == "sk-ant-test-key"
    assert os.environ["ANTHROPIC_BASE_URL"] == claude_server.base_url
    with anthropic.Anthropic(max_retries=0) as sdk:  # configured from the environment
        assert create(sdk).stop_reason == "end_turn"
    assert claude_server.last_request["api_key"] == "sk-ant-test-key"


def test_standalone_server_start_stop():
    with ClaudeTestServer(latency=0.05) as server:
        base_url = server.base_url
        with make_client(server) as sdk:
            assert create(sdk).stop_reason == "end_turn"
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(base_url + "/v1/messages/batches", timeout=1)


def test_stop_releases_a_hanging_request():
    server = ClaudeTestServer().start()
    server.enqueue(Behaviour("hang", seconds=30))
    outcome = []

    def call():
        with make_client(server, timeout=20) as sdk:
            try:
                create(sdk)
            except anthropic.APIConnectionError as exc:
                outcome.append(type(exc))

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert outcome == [anthropic.APIConnectionError]


def test_cli_serves_until_interrupted():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.claude_server", "--port", str(port), "--latency", "0.1"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        with anthropic.Anthropic(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0, timeout=10) as sdk:
            started = time.monotonic()
            assert create(sdk).stop_reason == "end_turn"
            assert time.monotonic() - started >= 0.1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
