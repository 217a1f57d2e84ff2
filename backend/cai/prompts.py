"""Prompt building from a constitution version, in chat-template and raw-completion forms.

Raw form follows the paper's layout (``Human:`` / ``Assistant:`` / ``CritiqueRequest:`` …);
chat form turns the same steps into conversation turns. Few-shot examples of the constitution
come first. Texts from users or models are placed as data; the prefixes that we score after
(``The answer is: (``) are always appended by us, at the very end, so a response that contains
``The answer is: (B)`` cannot move the position that is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from backend.cai.constitution import FewShotExample, Principle
from backend.engines.base import ChatMessage, Prompt

PromptForm = Literal["chat", "raw"]
ANSWER_PREFIX = "The answer is: ("
COT_PREFIX = "Let's think step by step:"
COT_STOPS: tuple[str, ...] = ("The answer is", "\nHuman:", "\n\nHuman:")


@dataclass(frozen=True)
class Exchange:
    """A conversation so far (the red-team prompt, possibly multi-turn) and a response to it."""

    prompt: str
    response: str


def _raw_dialogue(prompt: str, response: str | None = None) -> str:
    text = f"\n\nHuman: {prompt.strip()}\n\nAssistant:"
    return text + (f" {response.strip()}" if response is not None else "")


def _critique_shots(few_shots: Sequence[FewShotExample]) -> list[dict[str, Any]]:
    return [f.data for f in few_shots if f.kind == "critique_revision"]


def _raw_shot(shot: dict[str, Any]) -> str:
    if "text" in shot:
        return str(shot["text"]).rstrip() + "\n"
    return (_raw_dialogue(shot["prompt"], shot["response"])
            + f"\n\nCritiqueRequest: {shot['critique_request']}\n\nCritique: {shot['critique']}"
            + f"\n\nRevisionRequest: {shot['revision_request']}\n\nRevision: {shot['revision']}\n")


def _chat_shot(shot: dict[str, Any]) -> list[ChatMessage]:
    if "text" in shot:
        return [ChatMessage("user", "Example of a critique and revision:\n" + str(shot["text"])),
                ChatMessage("assistant", "Understood.")]
    return [ChatMessage("user", shot["prompt"]), ChatMessage("assistant", shot["response"]),
            ChatMessage("user", shot["critique_request"]),
            ChatMessage("assistant", shot["critique"]),
            ChatMessage("user", shot["revision_request"]),
            ChatMessage("assistant", shot["revision"])]


def response_prompt(prompt: str, form: PromptForm) -> Prompt:
    if form == "raw":
        return Prompt.raw(_raw_dialogue(prompt))
    return Prompt(messages=(ChatMessage("user", prompt),))


def critique_prompt(exchange: Exchange, principle: Principle, few_shots: Sequence[FewShotExample],
                    form: PromptForm, *, use_few_shots: bool = True) -> Prompt:
    shots = _critique_shots(few_shots) if use_few_shots else []
    if form == "raw":
        text = "".join(_raw_shot(s) for s in shots)
        text += (_raw_dialogue(exchange.prompt, exchange.response)
                 + f"\n\nCritiqueRequest: {principle.critique_request}\n\nCritique:")
        return Prompt.raw(text)
    messages: list[ChatMessage] = [m for s in shots for m in _chat_shot(s)]
    messages += [ChatMessage("user", exchange.prompt), ChatMessage("assistant", exchange.response),
                 ChatMessage("user", principle.critique_request)]
    return Prompt(messages=tuple(messages))


def revision_prompt(critique_step: Prompt, critique: str, principle: Principle) -> Prompt:
    """Continue the critique prompt with the model's critique and the revision request."""
    if critique_step.text is not None:
        return Prompt.raw(critique_step.text + f" {critique.strip()}\n\nRevisionRequest: "
                          f"{principle.revision_request}\n\nRevision:")
    assert critique_step.messages is not None
    return Prompt(messages=(*critique_step.messages, ChatMessage("assistant", critique.strip()),
                            ChatMessage("user", principle.revision_request)))


def _choice_body(exchange_prompt: str, response_a: str, response_b: str, instruction: str) -> str:
    return ("Consider the following conversation between a human and an assistant:\n"
            f"{_raw_dialogue(exchange_prompt).rstrip(':').rstrip()}\n\n"
            f"{instruction.strip()}\n\nOptions:\n"
            f"(A) [[[{response_a.strip()}]]]\n(B) [[[{response_b.strip()}]]]")


def choice_prompt(prompt: str, response_a: str, response_b: str, principle: Principle,
                  form: PromptForm, *, reasoning: str | None = None) -> Prompt:
    """The A/B question ending in our own ``The answer is: (`` (after CoT reasoning, if any)."""
    body = _choice_body(prompt, response_a, response_b, principle.choice_instruction)
    tail = ANSWER_PREFIX if reasoning is None else (
        f"{COT_PREFIX} {reasoning.strip()}\nTherefore, the answer is: (")
    if form == "raw":
        return Prompt.raw(f"\n\nHuman: {body}\n\nAssistant: {tail}")
    return Prompt.chat(("user", body), ("assistant", tail), continue_final=True)


def cot_prompt(prompt: str, response_a: str, response_b: str, principle: Principle,
               form: PromptForm) -> Prompt:
    """Ask for step-by-step reasoning before the verdict."""
    body = _choice_body(prompt, response_a, response_b, principle.choice_instruction)
    if form == "raw":
        return Prompt.raw(f"\n\nHuman: {body}\n\nAssistant: {COT_PREFIX}")
    return Prompt.chat(("user", body), ("assistant", COT_PREFIX), continue_final=True)


def render(prompt: Prompt) -> str:
    """A readable form of a prompt for logs when the engine did not report its own."""
    if prompt.text is not None:
        return prompt.text
    assert prompt.messages is not None
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in prompt.messages)



def sent_text(engine: object, prompt: Prompt) -> str:
    """The exact text the engine will feed the model, when the engine can tell (local engines
    apply the chat template themselves); otherwise a readable rendering of the prompt."""
    renderer = getattr(engine, "render_prompt", None)
    if callable(renderer):
        return str(renderer(prompt))
    return render(prompt)
