"""The OpenAI-compatible emulator answers and refuses langchain-openai as OpenAI does."""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, SecretStr

from sandbox.openai_server import OpenAIServerState, ToolCall

KEY = "sk-sandbox-test-key"
CHAT = "support-bot-v1"
EMBED = "embed-small"

Emulator = tuple[OpenAIServerState, str]


@pytest.fixture
def emulator(openai_server: Emulator) -> Emulator:
    state, url = openai_server
    state.reset()
    state.add_chat_model(
        CHAT,
        default="I am the sandbox.",
        rules={
            "2+2": "4",
            "triage": ToolCall("Triage", {"cause": "rate_limit", "confidence": 0.8}),
        },
    )
    state.add_embedding_model(EMBED, dimension=12)
    return state, url


def chat(url: str, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"model": CHAT, "api_key": SecretStr(KEY), "timeout": 5}
    options.update(kwargs)
    return ChatOpenAI(base_url=f"{url}/v1", max_retries=0, use_responses_api=False, **options)


def embedder(url: str, model: str = EMBED, **kwargs: Any) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model=model,
        openai_api_base=f"{url}/v1",
        openai_api_key=SecretStr(KEY),
        check_embedding_ctx_length=False,
        max_retries=0,
        **kwargs,
    )


def post(url: str, path: str, body: Any, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, bytes):
        return httpx.post(f"{url}/v1/{path}", content=body, headers=headers, timeout=5)
    return httpx.post(f"{url}/v1/{path}", json=body, headers=headers, timeout=5)


class Triage(BaseModel):
    cause: str
    confidence: float


def test_chat_answer_has_openai_shape_and_usage(emulator: Emulator) -> None:
    state, url = emulator
    body = {"model": CHAT, "messages": [{"role": "user", "content": "what is 2+2?"}]}

    answer = post(url, "chat/completions", body).json()

    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-") and isinstance(answer["created"], int)
    assert answer["model"] == CHAT
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "4", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert state.received(model=CHAT)[0].usage == usage


def test_chat_openai_gets_rule_replies_and_the_default(emulator: Emulator) -> None:
    _, url = emulator
    llm = chat(url)

    reply = llm.invoke("Quick: 2+2?")

    assert reply.text == "4"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 1
    assert llm.invoke("Who are you?").text == "I am the sandbox."


def test_scripted_tool_call_reaches_bind_tools_and_structured_output(emulator: Emulator) -> None:
    state, url = emulator
    llm = chat(url)

    called = llm.bind_tools([Triage]).invoke("please triage this incident")
    structured = llm.with_structured_output(Triage, method="function_calling").invoke("triage it")

    assert called.tool_calls[0]["name"] == "Triage"
    assert called.tool_calls[0]["args"] == {"cause": "rate_limit", "confidence": 0.8}
    assert structured == Triage(cause="rate_limit", confidence=0.8)
    sent = state.received(model=CHAT)[-1].body
    assert sent["tools"][0]["function"]["name"] == "Triage"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Triage"}}


def test_json_schema_structured_output_parses_a_json_reply(emulator: Emulator) -> None:
    state, url = emulator
    state.model(CHAT).rules["classify"] = '{"cause": "timeout", "confidence": 0.5}'

    result = chat(url).with_structured_output(Triage).invoke("classify this")

    assert result == Triage(cause="timeout", confidence=0.5)
    assert state.received(model=CHAT)[-1].body["response_format"]["type"] == "json_schema"


def test_max_completion_tokens_cuts_the_reply_with_finish_reason_length(emulator: Emulator) -> None:
    state, url = emulator
    state.model(CHAT).default = "word " * 100

    reply = chat(url, max_completion_tokens=5).invoke("talk to me")

    assert len(reply.text) == 20
    assert reply.response_metadata["finish_reason"] == "length"


def test_embeddings_are_unit_deterministic_and_base64_matches_float(emulator: Emulator) -> None:
    state, url = emulator
    client = embedder(url)

    first = client.embed_documents(["alpha", "beta"])
    again = client.embed_query("alpha")
    floats = post(url, "embeddings", {"model": EMBED, "input": "alpha"}).json()
    raw = post(url, "embeddings", {"model": EMBED, "input": "alpha", "encoding_format": "base64"})

    assert len(first) == 2 and all(len(v) == 12 for v in first)
    assert math.isclose(sum(x * x for x in first[0]), 1.0, rel_tol=1e-5)
    assert first[0] == again and first[0] != first[1]
    assert state.received(model=EMBED)[0].body["encoding_format"] == "base64"
    assert floats["data"][0]["object"] == "embedding" and floats["data"][0]["index"] == 0
    decoded = struct.unpack("<12f", base64.b64decode(raw.json()["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_dimensions_parameter_and_dimension_change(emulator: Emulator) -> None:
    state, url = emulator

    short = embedder(url, dimensions=4).embed_query("alpha")
    state.model(EMBED).dimension = 20
    longer = embedder(url).embed_query("alpha")

    assert len(short) == 4 and len(longer) == 20


def test_drift_lowers_similarity_to_earlier_vectors(emulator: Emulator) -> None:
    state, url = emulator
    client = embedder(url)
    before = client.embed_documents(["alpha", "beta", "gamma"])

    state.model(EMBED).set_drift(0.3)
    after = client.embed_documents(["alpha", "beta", "gamma"])
    state.model(EMBED).set_drift(0.0)
    restored = client.embed_documents(["alpha", "beta", "gamma"])

    similarities = [
        sum(x * y for x, y in zip(a, b, strict=True)) for a, b in zip(before, after, strict=True)
    ]
    assert all(0.5 < s < 0.98 for s in similarities), similarities
    assert restored == before


def test_fail_next_answers_the_fault_with_retry_after_then_recovers(emulator: Emulator) -> None:
    state, url = emulator
    state.model(CHAT).fail_next(429, times=2, retry_after=1.5)
    body = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}

    answers = [post(url, "chat/completions", body) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "1.5"
    assert answers[0].json()["error"]["code"] == "rate_limit_exceeded"
    state.model(CHAT).fail_next(503)
    with pytest.raises(openai.InternalServerError):
        chat(url).invoke("hi")
    assert chat(url).invoke("2+2").text == "4"


def test_faults_and_latency_are_per_model(emulator: Emulator) -> None:
    state, url = emulator
    state.model(EMBED).fail_next(500)
    state.model(EMBED).latency_seconds = 0.3

    started = time.monotonic()
    assert chat(url).invoke("2+2").text == "4"
    assert time.monotonic() - started < 0.3
    with pytest.raises(openai.InternalServerError):
        embedder(url).embed_query("alpha")
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("kind", "error"), [("not_json", ValueError), ("missing_field", (TypeError, ValueError))]
)
def test_malformed_answers_break_the_client_not_the_server(
    emulator: Emulator, kind: Any, error: Any
) -> None:
    state, url = emulator
    state.model(CHAT).malformed_next(kind=kind)
    state.model(EMBED).malformed_next(kind=kind)

    with pytest.raises(error):
        chat(url).invoke("2+2")
    with pytest.raises(error):
        embedder(url).embed_query("alpha")
    assert chat(url).invoke("2+2").text == "4"


def test_models_endpoints_list_and_retrieve(emulator: Emulator) -> None:
    _, url = emulator
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)

    assert [m.id for m in client.models.list()] == [EMBED, CHAT]
    assert client.models.retrieve(CHAT).owned_by == "sandbox"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "message"),
    [
        ("chat/completions", b"{nope", 400, None, "could not parse the JSON body"),
        ("chat/completions", {"messages": MESSAGES}, 400, None, "must provide a model"),
        ("chat/completions", {"model": CHAT}, 400, "messages", "Missing required parameter"),
        ("chat/completions", {"model": CHAT, "messages": []}, 400, "messages", "non-empty"),
        (
            "chat/completions",
            {"model": CHAT, "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages[0].role",
            "'robot'",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": [{"content": "x"}]},
            400,
            "messages[0].role",
            "Missing required parameter",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": [{"role": "user"}]},
            400,
            "messages[0].content",
            "Missing required parameter",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": [{"role": "tool", "content": "x"}]},
            400,
            "messages[0].tool_call_id",
            "Missing required parameter",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": MESSAGES, "tools": [{"type": "function"}]},
            400,
            "tools[0]",
            "expected",
        ),
        (
            "chat/completions",
            {
                "model": CHAT,
                "messages": MESSAGES,
                "tool_choice": {"type": "function", "function": {"name": "Ghost"}},
            },
            400,
            "tool_choice",
            "not in 'tools'",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": MESSAGES, "temperature": 3},
            400,
            "temperature",
            "between 0 and 2",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": MESSAGES, "max_completion_tokens": 0},
            400,
            "max_completion_tokens",
            "positive integer",
        ),
        (
            "chat/completions",
            {"model": CHAT, "messages": MESSAGES, "stream": True},
            400,
            "stream",
            "does not stream",
        ),
        ("chat/completions", {"model": "gpt-nope", "messages": MESSAGES}, 404, None, "gpt-nope"),
        ("chat/completions", {"model": EMBED, "messages": MESSAGES}, 400, "model", "not support"),
        ("embeddings", {"model": EMBED}, 400, "input", "Missing required parameter"),
        ("embeddings", {"model": EMBED, "input": ""}, 400, "input[0]", "non-empty"),
        ("embeddings", {"model": EMBED, "input": []}, 400, "input", "array of 1 to 2048"),
        (
            "embeddings",
            {"model": EMBED, "input": "x", "encoding_format": "int8"},
            400,
            "encoding_format",
            "'float' or 'base64'",
        ),
        (
            "embeddings",
            {"model": EMBED, "input": "x", "dimensions": 13},
            400,
            "dimensions",
            "from 1 to 12",
        ),
        ("embeddings", {"model": "text-nope", "input": "x"}, 404, None, "does not exist"),
    ],
)
def test_emulator_refuses_bad_requests_in_openai_error_shape(
    emulator: Emulator, path: str, body: Any, status: int, param: str | None, message: str
) -> None:
    state, url = emulator

    answer = post(url, path, body)

    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and message in error["message"], error
    if status == 404:
        assert error["code"] == "model_not_found"
    assert [r.status for r in state.received()] == [status]


def test_emulator_refuses_missing_and_wrong_keys(emulator: Emulator) -> None:
    state, url = emulator
    body = {"model": CHAT, "messages": MESSAGES}

    missing = post(url, "chat/completions", body, key=None)
    wrong = post(url, "embeddings", {"model": EMBED, "input": "x"}, key="sk-wrong-key-1234")

    assert (
        missing.status_code == 401
        and "didn't provide an API key" in missing.json()["error"]["message"]
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-1234" not in wrong.text and wrong.json()["error"]["message"].endswith(
        "1234."
    )
    with pytest.raises(openai.AuthenticationError):
        chat(url, api_key=SecretStr("sk-other")).invoke("hi")
    assert [r.status for r in state.received()] == [401, 401, 401]


def test_every_request_is_recorded_and_listed(emulator: Emulator) -> None:
    state, url = emulator
    chat(url).invoke("2+2")
    post(url, "embeddings", {"model": EMBED, "input": ["a", "b"]})

    listed = httpx.get(f"{url}/_sandbox/requests", timeout=5).json()["requests"]

    assert [(r["path"], r["model"], r["status"]) for r in listed] == [
        ("/v1/chat/completions", CHAT, 200),
        ("/v1/embeddings", EMBED, 200),
    ]
    assert state.received(path="/v1/embeddings")[0].body["input"] == ["a", "b"]
