"""The model seam: one small Protocol that every engine implements, and its data types.

An engine generates text for a batch of prompts, streams one generation, and scores a set of
single-token choices (e.g. ``A``/``B``) after a prefix. A prompt is either chat messages or raw
completion text; a chat prompt whose last message is from the assistant and has
``continue_final=True`` is continued rather than answered (``The answer is: (`` → ``A``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]
EngineKind = str  # a name in backend.engines.registry.ENGINE_KINDS


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Prompt:
    """Chat ``messages`` or raw ``text`` (exactly one of them)."""

    messages: tuple[ChatMessage, ...] | None = None
    text: str | None = None
    continue_final: bool = False

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.text is None):
            raise ValueError("a Prompt has either messages or text, not both or neither")
        if self.continue_final and (not self.messages or self.messages[-1].role != "assistant"):
            raise ValueError("continue_final needs a last message from the assistant")

    @staticmethod
    def chat(*messages: tuple[Role, str], continue_final: bool = False) -> Prompt:
        return Prompt(messages=tuple(ChatMessage(r, c) for r, c in messages),
                      continue_final=continue_final)

    @staticmethod
    def raw(text: str) -> Prompt:
        return Prompt(text=text)


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "stop": list(self.stop), "seed": self.seed}


def storable_text(text: str) -> str:
    """Model output as the store can hold it: a NUL (which a byte-level vocabulary can emit)
    becomes U+FFFD, since PostgreSQL text refuses NUL bytes."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_sent: str  # the exact text the model saw (chat template applied where known)
    finish_reason: str = "stop"  # "stop" | "length"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0

    def __post_init__(self) -> None:  # every engine's text passes here on its way to the store
        object.__setattr__(self, "text", storable_text(self.text))


@dataclass(frozen=True)
class ChoiceScores:
    """Probabilities of each choice, renormalised over the choices only.

    ``logprobs`` holds the raw next-token log-probabilities the engine reported; ``None`` marks
    a choice that was absent from the engine's top-k (its probability is taken as ~0).
    """

    probs: dict[str, float]
    logprobs: dict[str, float | None]
    prompt_sent: str
    latency_s: float = 0.0
    # Choices whose probability is only an upper-bound estimate (absent from a server's top-k:
    # taken as at most the smallest listed probability). Never silently 0.
    bounded: tuple[str, ...] = ()
    # Why this prompt could not be scored (no choice in the top-k, no logprobs returned, ...);
    # when set, ``probs`` is empty and the caller records the item as unscorable and goes on.
    unscorable: str | None = None
    # The engine's top next tokens and their log-probabilities, kept as evidence when a choice
    # was bounded or the prompt unscorable.
    top_tokens: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        return self.unscorable is None


@dataclass(frozen=True)
class EngineInfo:
    kind: EngineKind
    model: str
    is_demo: bool = False  # random weights: outputs are meaningless
    detail: str = ""

    @property
    def badge(self) -> str:
        if self.is_demo:
            return f"demo model: random weights ({self.model}); its outputs are meaningless"
        return f"{self.model} ({self.kind})"


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str
    models: tuple[str, ...] = field(default=())


@runtime_checkable
class Engine(Protocol):
    info: EngineInfo

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        """One generation per prompt, in order. Batched/concurrent inside the engine."""
        ...

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        """Text deltas of one generation as they are produced."""
        ...

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        """For each prompt, the normalised probability of each single-token choice as the next
        token. One forward pass (or one max_tokens=1 request) per prompt; no sampling."""
        ...

    def health(self) -> Health:
        ...

    def close(self) -> None:
        ...
