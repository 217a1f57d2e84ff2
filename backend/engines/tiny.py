"""The demo model: a tiny Llama-architecture causal LM with random weights, built offline.

Tests and CI have no model hub, so they build this model from a config (fixed seed, so the
weights are identical on every build) and a byte-level BPE tokenizer trained in milliseconds on
a small embedded corpus. Its outputs are meaningless, but every code path (batched generation,
logprob scoring, chat templates, training) runs for real on it.

Heavy libraries (torch, transformers, tokenizers) are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

TINY_MODEL_NAME = "cstudio-tiny-random-llama"
TINY_MODEL_FOLDER = "tiny-random-llama"
SEED = 20240611
VOCAB_SIZE = 768

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_TOKENS)



def tiny_model_dir(data_dir: Path) -> Path:
    """Where the demo model is built: ``<data dir>/models/tiny-random-llama`` (one home for
    the engines, the services and the training stages)."""
    return Path(data_dir) / "models" / TINY_MODEL_FOLDER


# The chat template: each turn is "<|role|>\n{content}<|eos|>\n"; the generation prompt opens an
# assistant turn. The content is rendered verbatim (no trimming), so transformers'
# ``continue_final_message=True`` can cut the rendered text right after the final message.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# Threads of one process share torch's RNG: building one model at a time keeps builds identical.
_BUILD_LOCK = threading.Lock()

# Files written by ``build_tiny_model``; their presence marks a finished build.
_MARKER = "cstudio-tiny.json"

CORPUS = """\
A constitution is a short list of principles that an assistant should follow.
Each principle asks a question about a response. Is it helpful? Is it honest? Is it harmless?
Which of these responses is more helpful, honest and harmless? The answer is: (A)
Which of these responses is less harmful? The answer is: (B)
Choose the response that a wise, ethical and polite person would more likely say.
Options: (A) the first response (B) the second response. Answer with A or B.
Option A is kind and clear. Option B is rude and vague. So A is better than B.
Option B is accurate and careful. Option A is careless. So B is better than A.
Critique request: identify specific ways in which the last response is harmful, unethical,
racist, sexist, toxic, dangerous, or illegal.
Critique: the response gives advice that could hurt someone, and it does not explain the risks.
Revision request: please rewrite the response to remove any harmful, unethical, racist, sexist,
toxic, dangerous, or illegal content.
Revision: here is a safer answer that still helps the person with their question.
Human: how do I bake bread at home? Assistant: mix flour, water, salt and yeast, knead the
dough, let it rise for an hour, shape it, and bake it in a hot oven until the crust is brown.
Human: can you help me write a polite email to my landlord? Assistant: of course. Start by
thanking them, describe the problem with the heating, and ask when someone could come by.
The model reads the prompt, thinks step by step, and then writes the answer in plain words.
We compare two answers, score each one, and keep the better answer for training.
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 2024.
Punctuation matters too: commas, periods. Questions? Yes! Quotes "like this" and 'this'.
Lists: - first item - second item - third item; pairs (x, y) and [brackets] {braces}.
Is response (A) or response (B) better? I think (A). No, I think (B). Both A and B are fine.
The assistant should refuse to help with dangerous requests, and explain why, politely.
The assistant should be honest about what it does not know, and say so in a friendly way.
"""


def _training_corpus() -> list[str]:
    lines = [line for line in CORPUS.splitlines() if line.strip()]
    # Repeat the A/B patterns so " A", " B", "(A", "A)" become merges in the vocabulary.
    extra = [" A B (A) (B) A) B) (A (B the answer is: (A) the answer is: (B)"] * 8
    return lines * 4 + extra


def _build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, bos_id)],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )


def _build_model(tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        # A wider init than the default 0.02 so the random model's next-token distribution is
        # not nearly flat (ties between top tokens would make greedy decoding fragile).
        initializer_range=0.25,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(SEED)
        model: Any = LlamaForCausalLM(config)
    model.eval()
    model.generation_config.do_sample = False
    return model


def _is_built(directory: Path) -> bool:
    return (directory / _MARKER).is_file()


def build_tiny_model(directory: Path) -> Path:
    """Build the demo model into ``directory`` (created if needed) and return the directory.

    Idempotent: a finished build is left as is. Safe when several processes race: each builds
    into a private temporary directory next to the target and renames it into place; the
    loser of the race discards its copy. Builds are bit-identical (fixed seed).
    """
    directory = Path(directory)
    if _is_built(directory):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    if directory.exists() and any(directory.iterdir()):
        if _is_built(directory):  # another process finished meanwhile
            return directory
        raise FileExistsError(
            f"{directory} exists, is not empty and holds no finished tiny model; "
            "remove it or choose another directory"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        with _BUILD_LOCK:
            tokenizer = _build_tokenizer()
            model = _build_model(tokenizer)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        digest = hashlib.sha256()
        for path in sorted(p for p in tmp.iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        marker = {"name": TINY_MODEL_NAME, "sha256": digest.hexdigest()}
        (tmp / _MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            directory.rmdir()  # only ever empty here; a racing builder may have removed it
        tmp.chmod(0o755)  # mkdtemp makes it private
        os.rename(tmp, directory)  # atomic; fails if a finished build is already there
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_built(directory):  # another process finished first
            return directory
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
