"""The LoRA trainer on the tiny test model (CPU): loop, labels, artifacts, errors, CLI and callbacks."""

import csv
import hashlib
import json
import math
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from django.core.management import call_command

from training.trainer import ARTIFACT_FILES, TrainerError, classify_exception, run_training
from training.trainer.__main__ import main as cli_main
from training.trainer.data import IGNORE_INDEX, load_split, tokenize_conversation
from training.trainer.reporters import SIGNATURE_HEADER, CallbackReporter, sign, verify
from training.trainer.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
SYSTEM = {"role": "system", "content": "You are a helpful financial planning assistant."}


def conversation(i):
    """Distinct examples with a repeated pattern (so the loss can fall); every 5th has two assistant turns."""
    income = 1000 + 250 * i
    rate = (10, 15, 20)[i % 3]
    messages = [
        SYSTEM,
        {"role": "user", "content": f"I earn ${income} a month. How much should I save?"},
        {"role": "assistant", "content": f"Save {rate}% of ${income}, which is ${income * rate // 100} a month."},
    ]
    if i % 5 == 0:
        messages += [
            {"role": "user", "content": "Thank you!"},
            {"role": "assistant", "content": "You're welcome. Review your budget every quarter."},
        ]
    return {"messages": messages}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def make_spec(tmp_path, model_path, **hyperparameters):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    spec = {
        "job_id": "job-1",
        "base_model": {"hf_id": "brightrun/tiny-test-llama", "path": str(model_path)},
        "hyperparameters": {
            "rank": 8,
            "alpha": 16,
            "dropout": 0.0,
            "learning_rate": 2e-3,
            "epochs": 3,
            "batch_size": 4,
            "grad_accum": 2,
            "warmup_ratio": 0.1,
            "target_modules": ["q", "k", "v", "o", "gate", "up", "down"],
            "max_seq_length": 256,
            "seed": 7,
            **hyperparameters,
        },
        "train_path": str(write_jsonl(data / "train.jsonl", [conversation(i) for i in range(40)])),
        "validation_path": str(write_jsonl(data / "validation.jsonl", [conversation(i) for i in range(40, 48)])),
        "output_dir": str(tmp_path / "out"),
    }
    return spec


class RecordingReporter:
    def __init__(self, cancel_at_step=None):
        self.cancel_at_step = cancel_at_step
        self.stages, self.metrics, self.events, self.started_with = [], [], [], None

    def stage(self, text, progress=None):
        self.stages.append((text, progress))

    def started(self, total_steps, device):
        self.started_with = (total_steps, device)

    def metric(self, step, epoch, **values):
        self.metrics.append({"step": step, "epoch": epoch, **values})

    def event(self, kind, message="", data=None):
        self.events.append((kind, message, data))

    def should_cancel(self):
        steps = [m["step"] for m in self.metrics]
        return self.cancel_at_step is not None and bool(steps) and max(steps) >= self.cancel_at_step

    def training_points(self):
        return [m for m in self.metrics if m.get("training_loss") is not None]

    def validation_points(self):
        return [m for m in self.metrics if m.get("validation_loss") is not None]


@pytest.fixture(scope="module")
def trained(tiny_model_path, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    spec = make_spec(tmp_path, tiny_model_path)
    reporter = RecordingReporter()
    result = run_training(spec, reporter)
    return spec, reporter, result


# ---- the loop ---------------------------------------------------------------------------------------------------


def test_training_loss_falls_and_every_step_reports(trained):
    _, reporter, result = trained
    assert result.status == "completed"
    # 40 examples / batch 4 = 10 batches, / grad accum 2 = 5 steps per epoch, × 3 epochs.
    assert reporter.started_with == (15, "cpu (float32)")
    points = reporter.training_points()
    assert [p["step"] for p in points] == list(range(1, 16))
    assert all(p["learning_rate"] is not None and p["grad_norm"] > 0 and p["tokens_per_second"] > 0 for p in points)
    last = [p["training_loss"] for p in points[-3:]]
    assert sum(last) / len(last) < points[0]["training_loss"]
    assert points[0]["learning_rate"] == 0.0 and max(p["learning_rate"] for p in points) == pytest.approx(2e-3)
    assert result.steps == 15 and result.device == "cpu (float32)"
    assert result.train_tokens > 0 and result.tokens_per_second > 0


def test_validation_loss_recorded_at_each_epoch_end(trained):
    _, reporter, result = trained
    validation = reporter.validation_points()
    assert [(p["step"], p["epoch"]) for p in validation] == [(5, 1.0), (10, 2.0), (15, 3.0)]
    assert [kind for kind, _, _ in reporter.events] == ["epoch_end"] * 3
    assert reporter.events[-1][2]["validation_loss"] == validation[-1]["validation_loss"]
    assert result.final_validation_loss == validation[-1]["validation_loss"]
    assert validation[-1]["validation_loss"] < validation[0]["validation_loss"]


# ---- artifacts --------------------------------------------------------------------------------------------------


def test_all_artifact_files_written_with_sha256(trained):
    spec, reporter, result = trained
    adapter = Path(spec["output_dir"]) / "adapter"
    assert ARTIFACT_FILES == (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "training_config.json",
        "metrics.csv",
    )
    assert sorted(p.name for p in adapter.iterdir()) == sorted(ARTIFACT_FILES)
    assert [f.name for f in result.files] == list(ARTIFACT_FILES)
    for file in result.files:
        content = file.path.read_bytes()
        assert file.size == len(content) > 0
        assert file.sha256 == hashlib.sha256(content).hexdigest()
        assert file.as_dict() == {"name": file.name, "size": file.size, "sha256": file.sha256}

    config = json.loads((adapter / "training_config.json").read_text())
    assert config["hyperparameters"]["seed"] == 7 == config["seed"]
    assert config["base_model"]["hf_id"] == "brightrun/tiny-test-llama"
    assert config["counts"]["train"]["examples"] == 40 and config["counts"]["validation"]["examples"] == 8
    assert config["final_training_loss"] == result.final_training_loss
    assert config["device"] == "cpu (float32)" and config["tokens_per_second"] > 0
    assert len(config["verification"]["top_logits"]) == 16

    with open(adapter / "metrics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [
        "step", "epoch", "training_loss", "validation_loss", "learning_rate", "grad_norm", "tokens_per_second",
    ]  # fmt: skip
    assert len(rows) == len(reporter.metrics) == 18
    assert sum(1 for row in rows if row["validation_loss"]) == 3


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_reloaded_adapter_reproduces_verification_logits(trained, tiny_model_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec, _, _ = trained
    adapter = Path(spec["output_dir"]) / "adapter"
    verification = json.loads((adapter / "training_config.json").read_text())["verification"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_path), adapter).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([verification["input_ids"]])).logits[0, -1]
    indices = torch.tensor(verification["top_indices"])
    assert torch.allclose(logits[indices], torch.tensor(verification["top_logits"]), atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    with torch.no_grad():
        base_logits = base(input_ids=torch.tensor([verification["input_ids"]])).logits[0, -1]
    assert not torch.allclose(base_logits[indices], logits[indices], atol=1e-4)  # the adapter changed something


def test_same_seed_same_adapter(tiny_model_path, tmp_path):
    digests = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        spec = make_spec(tmp_path / name, tiny_model_path, dropout=0.1, epochs=1)  # dropout draws from the seed too
        spec["max_steps"] = 3
        result = run_training(spec, RecordingReporter())
        # training_config.json and metrics.csv hold timings; the weights and tokenizer must match byte for byte.
        digests.append(
            {f.name: f.sha256 for f in result.files if f.name not in ("training_config.json", "metrics.csv")}
        )
    assert digests[0] == digests[1]


# ---- labels -----------------------------------------------------------------------------------------------------


def _label_runs(example):
    runs, current = [], []
    for label in example.labels:
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return [*runs, current] if current else runs


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


def test_labels_cover_only_assistant_messages(tokenizer):
    messages = conversation(0)["messages"]
    example, truncated = tokenize_conversation(tokenizer, messages, 2048)
    assert not truncated and len(example.labels) == len(example.input_ids)
    decoded = [tokenizer.decode(run) for run in _label_runs(example)]
    assistants = [m["content"] for m in messages if m["role"] == "assistant"]
    assert len(assistants) == 2
    # Each span is the assistant content plus the end-of-turn the model must learn to emit.
    assert decoded == [content + "<|im_end|>\n" for content in assistants]
    for label, token in zip(example.labels, example.input_ids, strict=True):
        assert label in (IGNORE_INDEX, token)


def test_weight_zero_assistant_message_is_masked(tokenizer):
    messages = [dict(m) for m in conversation(0)["messages"]]
    messages[2]["weight"] = 0
    example, _ = tokenize_conversation(tokenizer, messages, 2048)
    assert [tokenizer.decode(run) for run in _label_runs(example)] == [messages[4]["content"] + "<|im_end|>\n"]

    messages[4]["weight"] = 0
    example, _ = tokenize_conversation(tokenizer, messages, 2048)
    assert example.n_trainable == 0


def test_truncation_skips_examples_without_trainable_tokens(tokenizer, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [conversation(1), conversation(2)])
    full = load_split(tokenizer, path, 2048)
    assert full.stats.examples == 2 and full.stats.truncated == 0
    short = load_split(tokenizer, path, 20)  # the system and user turns alone are longer than 20 tokens
    assert short.stats.truncated == 2 and short.stats.skipped_no_trainable == 2 and short.examples == []
    some = load_split(tokenizer, path, full.examples[0].n_tokens - 3)
    assert some.stats.examples == 2 and all(e.n_tokens == full.examples[0].n_tokens - 3 for e in some.examples)


# ---- cancel and errors ------------------------------------------------------------------------------------------


def test_cancel_stops_at_the_next_step_without_artifacts(tiny_model_path, tmp_path):
    spec = make_spec(tmp_path, tiny_model_path)
    reporter = RecordingReporter(cancel_at_step=2)
    result = run_training(spec, reporter)
    assert result.status == "cancelled" and result.files == [] and result.steps == 2
    assert [p["step"] for p in reporter.training_points()] == [1, 2]
    assert not (tmp_path / "out" / "adapter").exists()


def test_diverging_learning_rate_is_a_nan_loss(tiny_model_path, tmp_path):
    spec = make_spec(tmp_path, tiny_model_path, learning_rate=1e6, warmup_ratio=0.0)
    with pytest.raises(TrainerError) as caught:
        run_training(spec, RecordingReporter())
    assert caught.value.code == "nan_loss"
    assert "learning rate" in caught.value.hint.lower()


def test_classify_exception():
    oom = classify_exception(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)"))
    assert oom.code == "out_of_memory" and "batch size" in oom.hint
    assert classify_exception(torch.cuda.OutOfMemoryError("boom")).code == "out_of_memory"
    assert classify_exception(json.JSONDecodeError("Expecting value", "x", 0)).code == "dataset_error"
    assert classify_exception(RuntimeError("Loss is NaN")).code == "nan_loss"
    assert classify_exception(KeyError("x")).code == "trainer_error"
    error = TrainerError("upload_error", "PUT failed")
    assert classify_exception(error) is error and error.as_dict()["hint"]


def test_bad_dataset_line_is_a_dataset_error(tiny_model_path, tmp_path):
    spec = make_spec(tmp_path, tiny_model_path)
    Path(spec["train_path"]).write_text(json.dumps(conversation(1)) + "\n{not json\n")
    with pytest.raises(TrainerError) as caught:
        run_training(spec, RecordingReporter())
    assert caught.value.code == "dataset_error" and "Line 2" in caught.value.message
    assert "validation report" in caught.value.hint


def test_missing_model_is_a_model_load_error(tmp_path):
    spec = make_spec(tmp_path, tmp_path / "no-such-model")
    with pytest.raises(TrainerError) as caught:
        run_training(spec, RecordingReporter())
    assert caught.value.code == "model_load_error"


# ---- tiny model -------------------------------------------------------------------------------------------------


def test_tiny_model_build_is_deterministic(tiny_model_path, tmp_path):
    call_command("build_test_model", "--path", str(tmp_path / "again"))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tiny_model_path / name).read_bytes(), name
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (64, 2, 512)
    assert (config["intermediate_size"], config["max_position_embeddings"]) == (128, 2048)
    assert (
        build_tiny_model(tmp_path / "other", seed=1).joinpath("model.safetensors").read_bytes()
        != (tiny_model_path / "model.safetensors").read_bytes()
    )


# ---- process edges: CLI, callbacks, uploads ---------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        content = self.server.files.get(self.path)
        self.send_response(200 if content is not None else 404)
        self.end_headers()
        self.wfile.write(content or b"")

    def do_POST(self):
        body = self._body()
        self.server.posts.append((dict(self.headers), body))
        answer = json.dumps({"ok": True, "cancel": self.server.cancel}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_PUT(self):
        self.server.puts[self.path] = self._body()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.posts, server.puts, server.files, server.cancel = [], {}, {}, False
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_callback_reporter_signs_bodies_and_learns_cancel(http_server):
    reporter = CallbackReporter(http_server.url + "/callback", "secret-token", "job-9")
    reporter.stage("Loading", 1)
    reporter.metric(1, 0.1, training_loss=float("nan"), learning_rate=1e-4)
    assert reporter.should_cancel() is False
    http_server.cancel = True
    reporter.event("epoch_end", "Epoch 1", {"step": 1})
    assert reporter.should_cancel() is True

    assert len(http_server.posts) == 3
    for headers, body in http_server.posts:
        expected = "sha256=" + __import__("hmac").new(b"secret-token", body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected == sign("secret-token", body)
        assert verify("secret-token", body, headers[SIGNATURE_HEADER])
        assert not verify("other-token", body, headers[SIGNATURE_HEADER])
    bodies = [json.loads(body) for _, body in http_server.posts]
    assert bodies[0] == {"job_id": "job-9", "type": "stage", "text": "Loading", "progress": 1}
    assert bodies[1]["type"] == "metric" and bodies[1]["training_loss"] is None  # NaN is not JSON
    assert bodies[2]["kind"] == "epoch_end" and bodies[2]["data"] == {"step": 1}


def _job_file(spec, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(spec))
    return job


def _run_cli(spec, tmp_path):
    job = _job_file(spec, tmp_path)
    command = [sys.executable, "-m", "training.trainer", "--job", str(job)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2", "HOME": str(tmp_path)}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_cli_writes_json_lines(tiny_model_path, tmp_path):
    spec = make_spec(tmp_path, tiny_model_path, epochs=1)
    spec["max_steps"] = 2
    completed = _run_cli(spec, tmp_path)
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "stage" and types[-1] == "completed"
    assert "started" in types and types.count("metric") == 3  # 2 steps + 1 evaluation
    assert all(line["job_id"] == "job-1" for line in lines)
    done = lines[-1]
    assert done["status"] == "completed" and done["steps"] == 2
    assert [f["name"] for f in done["files"]] == list(ARTIFACT_FILES)
    assert "django" not in completed.stderr.lower()


def test_cli_with_callback_url_downloads_uploads_and_signs(tiny_model_path, tmp_path, http_server, capsys):
    spec = make_spec(tmp_path, tiny_model_path, epochs=1)
    http_server.files["/data/train.jsonl"] = Path(spec.pop("train_path")).read_bytes()
    http_server.files["/data/validation.jsonl"] = Path(spec.pop("validation_path")).read_bytes()
    spec.update(
        train_url=http_server.url + "/data/train.jsonl",
        validation_url=http_server.url + "/data/validation.jsonl",
        callback_url=http_server.url + "/callback",
        callback_token="tok-123",
        artifact_uploads={name: f"{http_server.url}/upload/{name}?X-Amz-Signature=abc" for name in ARTIFACT_FILES},
        max_steps=2,
    )
    # In-process (same code as `python -m training.trainer`, one torch start-up fewer on the shared machine).
    assert cli_main(["--job", str(_job_file(spec, tmp_path))]) == 0
    assert capsys.readouterr().out == ""
    bodies = []
    for headers, body in http_server.posts:
        assert verify("tok-123", body, headers[SIGNATURE_HEADER])
        bodies.append(json.loads(body))
    types = [body["type"] for body in bodies]
    assert types[-1] == "completed" and "started" in types and "metric" in types
    files = bodies[-1]["files"]
    assert [f["name"] for f in files] == list(ARTIFACT_FILES)
    for file in files:
        uploaded = http_server.puts[f"/upload/{file['name']}?X-Amz-Signature=abc"]
        assert hashlib.sha256(uploaded).hexdigest() == file["sha256"] and len(uploaded) == file["size"]


def test_cli_reports_cancel_from_callback_response(tiny_model_path, tmp_path, http_server):
    spec = make_spec(tmp_path, tiny_model_path)
    spec.update(callback_url=http_server.url + "/callback", callback_token="tok", artifact_uploads={"metrics.csv": "x"})
    http_server.cancel = True
    assert cli_main(["--job", str(_job_file(spec, tmp_path))]) == 0
    bodies = [json.loads(body) for _, body in http_server.posts]
    # The stage callbacks' responses already asked for the cancel, so it stops before the first step.
    assert bodies[-1]["type"] == "cancelled" and bodies[-1]["steps"] == 0 and bodies[-1]["files"] == []
    assert "started" in [b["type"] for b in bodies] and http_server.puts == {}


def test_trainer_does_not_import_django():
    code = "import sys, training.trainer.run, training.trainer.tiny; assert 'django' not in sys.modules, 'django'"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_metric_values_are_finite(trained):
    _, reporter, _ = trained
    for point in reporter.metrics:
        assert all(math.isfinite(v) for k, v in point.items() if isinstance(v, float))


def test_cli_rejects_an_unusable_job_file(tmp_path, capsys):
    assert cli_main(["--job", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert cli_main(["--job", str(tmp_path / "bad.json")]) == 2
    assert "cannot use the job file" in capsys.readouterr().err


def test_dataset_download_failure_is_a_dataset_error(tiny_model_path, tmp_path, http_server):
    spec = make_spec(tmp_path, tiny_model_path)
    spec["train_url"] = http_server.url + "/data/missing.jsonl"
    del spec["train_path"]
    with pytest.raises(TrainerError) as caught:
        run_training(spec, RecordingReporter())
    assert caught.value.code == "dataset_error" and "404" in caught.value.message


def test_upload_failure_is_an_upload_error(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setattr("training.trainer.artifacts.UPLOAD_RETRY_SECONDS", 0)
    spec = make_spec(tmp_path, tiny_model_path, epochs=1)
    spec.update(max_steps=1, artifact_uploads={"metrics.csv": "http://127.0.0.1:9/unreachable"})
    with pytest.raises(TrainerError) as caught:
        run_training(spec, RecordingReporter())
    assert caught.value.code == "upload_error"


def test_gradient_checkpointing_path_trains(tiny_model_path, tmp_path):
    spec = make_spec(tmp_path, tiny_model_path, epochs=1)
    spec.update(max_steps=2, gradient_checkpointing=True)  # the CUDA default, exercised on the CPU
    reporter = RecordingReporter()
    result = run_training(spec, reporter)
    assert result.status == "completed" and [p["step"] for p in reporter.training_points()] == [1, 2]
    assert all(p["grad_norm"] > 0 for p in reporter.training_points())


def test_cli_failure_is_one_log_line_and_a_failed_report(tiny_model_path, tmp_path, capsys, caplog):
    spec = make_spec(tmp_path, tiny_model_path)
    Path(spec["train_path"]).write_text("{broken\n")
    assert cli_main(["--job", str(_job_file(spec, tmp_path))]) == 1
    captured = capsys.readouterr()
    last = json.loads(captured.out.splitlines()[-1])
    assert last["type"] == "failed" and last["code"] == "dataset_error" and last["hint"]
    # The remote handler reads this line from the trainer's stderr.
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training failed:")]
    assert line.startswith("training failed: Line 1 is not valid JSON") and line.endswith(" (dataset_error)")
