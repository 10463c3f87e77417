"""The tiny test model: a random-initialised LLaMA-style model and a locally trained tokenizer (SPEC §10.1).

``build_tiny_model(path)`` writes a complete Hugging Face model folder (``config.json``,
``generation_config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``,
``chat_template.jinja``) so the whole training path — chat template, LoRA, artifacts — runs on a CPU in seconds
with no download. Everything is deterministic: the byte-level BPE tokenizer (vocabulary 512) is trained on the
built-in corpus below, and the weights come from ``torch.manual_seed(seed)``. The folder is built in a sibling
temporary folder and renamed into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

HIDDEN_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 4
INTERMEDIATE_SIZE = 128
VOCAB_SIZE = 512
MAX_POSITIONS = 2048

SPECIAL_TOKENS = ("<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
TOKEN_ROLES = {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "<|im_end|>"}

# ChatML, as Qwen uses it: the generation prompt is exactly the assistant header.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = """
A budget is a plan for every dollar you earn, spend, save and invest each month.
Start with your take-home pay, then list fixed costs such as rent, insurance and loan payments.
An emergency fund should cover three to six months of essential expenses.
Keep the emergency fund in a high-yield savings account that you can reach quickly.
Pay off high-interest credit card debt before you invest in the stock market.
The avalanche method pays the highest interest rate first; the snowball method pays the smallest balance first.
A retirement account grows tax-deferred, so contributions today compound for decades.
If your employer matches contributions, contribute at least enough to receive the full match.
Index funds hold many companies at a low cost and spread the risk of any single stock.
Diversification means owning different assets so one loss does not sink the whole portfolio.
Your asset allocation should reflect your goals, your time horizon and your tolerance for risk.
Rebalance once or twice a year to bring the portfolio back to its target mix.
Inflation reduces purchasing power, so money kept in cash loses value over time.
A mortgage payment includes principal, interest, property tax and homeowners insurance.
Refinancing can lower the interest rate, but closing costs must be weighed against the savings.
Term life insurance protects your family for a fixed number of years at a modest premium.
Disability insurance replaces part of your income if you cannot work.
A will and a beneficiary designation decide who inherits your accounts.
Track your net worth: assets minus liabilities, measured at the same time each year.
Saving for college can use tax-advantaged plans that grow without tax when spent on tuition.
Automate savings so a fixed amount moves to savings on the day you are paid.
Review your credit report each year and dispute any errors you find.
A good credit score lowers the interest you pay on loans and mortgages.
Small recurring subscriptions add up; cancel the ones you no longer use.
Set clear goals: what you want, how much it costs and when you need the money.
Short-term goals belong in safe accounts; long-term goals can take more market risk.
Taxes matter: understand your bracket, deductions and credits before the filing deadline.
Financial planning is a habit, not a single decision, so check your plan every quarter.
How much should I save for retirement? Aim for fifteen percent of your income, including any match.
What is a reasonable amount to spend on housing? Many planners suggest less than thirty percent of income.
Should I pay off my student loans or invest? Compare the loan rate with the expected return.
How do I start investing with little money? Open a low-cost account and buy a broad index fund.
The user asks a question and the assistant answers with clear, practical and honest advice.
You are a helpful financial planning assistant. Answer briefly and explain the reasoning.
Thank you! You're welcome. Is there anything else I can help you with today?
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 15 20 25 30 40 50 60 75 100 250 500 1000 $ % . , ; : ? ! ' " ( ) -
"""


def _corpus_lines() -> list[str]:
    lines = [line.strip() for line in _CORPUS.strip().splitlines() if line.strip()]
    chats = [
        f"<|im_start|>system\n{lines[33]}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
        f"<|im_start|>assistant\n{answer}<|im_end|>\n"
        for question, answer in zip(lines[28:32], lines[:28], strict=False)
    ]
    return lines * 4 + chats * 4


def build_tokenizer():
    """Train the byte-level BPE tokenizer and wrap it as a transformers fast tokenizer with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=TOKEN_ROLES["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        **TOKEN_ROLES,
        additional_special_tokens=["</s>", "<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(path: str | Path, *, seed: int = 0) -> Path:
    """Write the tiny test model into ``path`` (replacing what is there) and return the path.

    Called by ``manage.py build_test_model`` and the test fixture ``tiny_model_path``; deterministic for a given
    seed (same files, byte for byte, on the same library versions).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
