"""Prompt building from a constitution version, in chat-template and raw-completion forms.

Raw form follows the paper's layout (``Human:`` / ``Assistant:`` / ``CritiqueRequest:`` …);
chat form turns the same steps into conversation turns (a multi-turn dialogue becomes
alternating user / assistant messages). Few-shot examples of the constitution come first:
``critique_revision`` examples in front of critique prompts, ``choice`` examples in front of
A/B questions and ``choice_cot`` examples in front of chain-of-thought questions. Texts from
users or models are placed as data; the prefixes that we score after (``The answer is: (``)
are always appended by us, at the very end, so a response that contains ``The answer is: (B)``
cannot move the position that is scored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from backend.cai.constitution import FewShotExample, Principle
from backend.engines.base import ChatMessage, Prompt, Role

PromptForm = Literal["chat", "raw"]
ANSWER_PREFIX = "The answer is: ("
COT_PREFIX = "Let's think step by step:"
COT_STOPS: tuple[str, ...] = ("The answer is", "\nHuman:", "\n\nHuman:")
# In the raw layout a base model runs on into turns it invents; every raw step stops there.
RAW_STOPS: tuple[str, ...] = ("\n\nHuman:", "\n\nAssistant:", "\n\nCritiqueRequest:",
                              "\n\nCritique:", "\n\nRevisionRequest:", "\n\nRevision:")
CHOICE_HEADER = "Consider the following conversation between a human and an assistant:"

_LABEL_ROLES: dict[str, Role] = {"Human": "user", "Assistant": "assistant",
                                 "CritiqueRequest": "user", "Critique": "assistant",
                                 "RevisionRequest": "user", "Revision": "assistant"}
_TURN_RE = re.compile(r"(?:^|\n\n)(Human|Assistant|CritiqueRequest|Critique|RevisionRequest"
                      r"|Revision):[ \t]?")
_DIALOGUE_RE = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


@dataclass(frozen=True)
class Exchange:
    """A conversation so far (the red-team prompt, possibly multi-turn) and a response to it."""

    prompt: str
    response: str


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest stop string (what an engine honouring ``stops`` returns)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]


def _labelled_turns(text: str, pattern: re.Pattern[str] = _TURN_RE) -> list[tuple[str, str]]:
    """(label, content) of a text in the paper's ``Label: content`` layout; empty turns
    (a trailing ``Human:`` or ``Assistant:``) are dropped."""
    parts = pattern.split(text.strip("\n"))
    turns = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
    return [(label, content) for label, content in turns if content]


def dialogue_turns(prompt: str) -> list[tuple[Role, str]]:
    """A prompt as conversation turns: text in the ``Human: … Assistant: …`` layout is split
    into its turns; any other text is one user turn."""
    if not prompt.lstrip().startswith("Human:"):
        return [("user", prompt.strip())]
    turns = [(_LABEL_ROLES[label], c) for label, c in _labelled_turns(prompt, _DIALOGUE_RE)]
    return turns or [("user", prompt.strip())]


def _raw_turns(turns: Sequence[tuple[Role, str]]) -> str:
    return "".join(f"\n\n{'Human' if role == 'user' else 'Assistant'}: {content}"
                   for role, content in turns)


def _raw_dialogue(prompt: str, response: str | None = None) -> str:
    text = _raw_turns(dialogue_turns(prompt)) + "\n\nAssistant:"
    return text + (f" {response.strip()}" if response is not None else "")


def _chat_dialogue(prompt: str) -> list[ChatMessage]:
    return [ChatMessage(role, content) for role, content in dialogue_turns(prompt)]


def shots_of(few_shots: Sequence[FewShotExample], kind: str) -> list[tuple[int, FewShotExample]]:
    """(position in the version, example) of each few-shot example of ``kind``."""
    return [(i, f) for i, f in enumerate(few_shots) if f.kind == kind]


def _critique_shots(few_shots: Sequence[FewShotExample]) -> list[dict[str, Any]]:
    return [f.data for f in few_shots if f.kind == "critique_revision"]


def _raw_shot(shot: dict[str, Any]) -> str:
    if "text" in shot:  # the paper's examples end in an empty "\n\nHuman:" turn: drop it
        return "".join(f"\n\n{label}: {content}"
                       for label, content in _labelled_turns(str(shot["text"])))
    return (_raw_dialogue(shot["prompt"], shot["response"])
            + f"\n\nCritiqueRequest: {shot['critique_request']}\n\nCritique: {shot['critique']}"
            + f"\n\nRevisionRequest: {shot['revision_request']}\n\nRevision: {shot['revision']}")


def _chat_shot(shot: dict[str, Any]) -> list[ChatMessage]:
    if "text" in shot:
        return _alternating([(_LABEL_ROLES[label], content)
                             for label, content in _labelled_turns(str(shot["text"]))])
    return [*_chat_dialogue(shot["prompt"]), ChatMessage("assistant", shot["response"]),
            ChatMessage("user", shot["critique_request"]),
            ChatMessage("assistant", shot["critique"]),
            ChatMessage("user", shot["revision_request"]),
            ChatMessage("assistant", shot["revision"])]


def _alternating(turns: Sequence[tuple[Role, str]]) -> list[ChatMessage]:
    """Messages with consecutive turns of one role merged, so roles alternate."""
    out: list[ChatMessage] = []
    for role, content in turns:
        if out and out[-1].role == role:
            out[-1] = ChatMessage(role, out[-1].content + "\n\n" + content)
        else:
            out.append(ChatMessage(role, content))
    return out


def response_prompt(prompt: str, form: PromptForm) -> Prompt:
    if form == "raw":
        return Prompt.raw(_raw_dialogue(prompt))
    return Prompt(messages=tuple(_chat_dialogue(prompt)))


def critique_prompt(exchange: Exchange, principle: Principle, few_shots: Sequence[FewShotExample],
                    form: PromptForm, *, use_few_shots: bool = True) -> Prompt:
    shots = _critique_shots(few_shots) if use_few_shots else []
    if form == "raw":
        text = "".join(_raw_shot(s) for s in shots)
        text += (_raw_dialogue(exchange.prompt, exchange.response)
                 + f"\n\nCritiqueRequest: {principle.critique_request}\n\nCritique:")
        return Prompt.raw(text)
    messages: list[ChatMessage] = [m for s in shots for m in _chat_shot(s)]
    messages += [*_chat_dialogue(exchange.prompt), ChatMessage("assistant", exchange.response),
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
    """The A/B question: the conversation so far (no trailing ``Assistant`` line), the
    principle's instruction, and the two options."""
    dialogue = _raw_turns(dialogue_turns(exchange_prompt)).strip("\n")
    return (f"{CHOICE_HEADER}\n\n{dialogue}\n\n{instruction.strip()}\n\nOptions:\n"
            f"(A) [[[{response_a.strip()}]]]\n(B) [[[{response_b.strip()}]]]")


def _answer_turns(body: str, answer: str) -> tuple[str, list[ChatMessage]]:
    return (f"\n\nHuman: {body}\n\nAssistant: {answer}",
            [ChatMessage("user", body), ChatMessage("assistant", answer)])


def _choice_shot(index: int, shot: dict[str, Any], instruction: str
                 ) -> tuple[str, list[ChatMessage]]:
    """A ``choice`` example as a solved A/B question. The correct option is shown first in
    every other example, so the examples teach no position."""
    correct, wrong = str(shot["corrects"][0]), str(shot["incorrects"][0])
    first_correct = index % 2 == 0
    a, b = (correct, wrong) if first_correct else (wrong, correct)
    body = _choice_body(str(shot["prompt"]), a, b, str(shot.get("question") or instruction))
    return _answer_turns(body, f"{ANSWER_PREFIX}{'A' if first_correct else 'B'})")


def _cot_shot(index: int, shot: dict[str, Any], instruction: str
              ) -> tuple[str, list[ChatMessage]]:
    """A ``choice_cot`` example: the paper's text (its ``{}`` is the instruction), or the own
    form {prompt, response_a, response_b, reasoning, answer, question?}."""
    if "response_a" in shot:
        body = _choice_body(str(shot["prompt"]), str(shot["response_a"]),
                            str(shot["response_b"]), str(shot.get("question") or instruction))
        answer = (f"{COT_PREFIX} {str(shot['reasoning']).strip()}\nTherefore, the answer is: "
                  f"({str(shot['answer']).strip()})")
        return _answer_turns(body, answer)
    text = str(shot["prompt"]).replace("{}", f"{instruction.strip()} Options:")
    turns = [(_LABEL_ROLES[label], c) for label, c in _labelled_turns(text, _DIALOGUE_RE)]
    if len(turns) >= 3 and turns[-1][0] == "user" and turns[-2][0] == "assistant":
        # the paper asks "So the answer is: (X)" in a last Human turn; one assistant turn here
        turns = [*turns[:-2], ("assistant", f"{turns[-2][1]}\n{turns[-1][1]}")]
    return _raw_turns(turns), _alternating(turns)


def _with_shots(form: PromptForm, shots: Sequence[tuple[str, list[ChatMessage]]], body: str,
                tail: str) -> Prompt:
    if form == "raw":
        return Prompt.raw("".join(raw for raw, _ in shots)
                          + f"\n\nHuman: {body}\n\nAssistant: {tail}")
    messages = [m for _, ms in shots for m in ms]
    return Prompt(messages=(*messages, ChatMessage("user", body), ChatMessage("assistant", tail)),
                  continue_final=True)


# Solved examples already built, by (instruction, with CoT): a caller that builds many
# questions from the same examples passes one dict to every call (they differ only by item).
ShotMemo = dict[tuple[str, bool], list[tuple[str, list[ChatMessage]]]]


def _solved(shots: Sequence[FewShotExample], instruction: str, cot: bool,
            memo: ShotMemo | None) -> list[tuple[str, list[ChatMessage]]]:
    found = memo.get((instruction, cot)) if memo is not None else None
    if found is None:
        build = _cot_shot if cot else _choice_shot
        found = [build(i, s.data, instruction) for i, s in enumerate(shots)]
        if memo is not None:
            memo[(instruction, cot)] = found
    return found


def choice_prompt(prompt: str, response_a: str, response_b: str, principle: Principle,
                  form: PromptForm, *, reasoning: str | None = None,
                  shots: Sequence[FewShotExample] = (), memo: ShotMemo | None = None) -> Prompt:
    """The A/B question ending in our own ``The answer is: (`` (after CoT reasoning, if any).
    ``shots``: ``choice`` examples (no CoT) or ``choice_cot`` examples (with reasoning);
    ``memo``: shared by calls with the same ``shots`` (see ShotMemo)."""
    body = _choice_body(prompt, response_a, response_b, principle.choice_instruction)
    tail = ANSWER_PREFIX if reasoning is None else (
        f"{COT_PREFIX} {reasoning.strip()}\nTherefore, the answer is: (")
    solved = _solved(shots, principle.choice_instruction, reasoning is not None, memo)
    return _with_shots(form, solved, body, tail)


def cot_prompt(prompt: str, response_a: str, response_b: str, principle: Principle,
               form: PromptForm, *, shots: Sequence[FewShotExample] = (),
               memo: ShotMemo | None = None) -> Prompt:
    """Ask for step-by-step reasoning before the verdict (after ``choice_cot`` examples)."""
    body = _choice_body(prompt, response_a, response_b, principle.choice_instruction)
    solved = _solved(shots, principle.choice_instruction, True, memo)
    return _with_shots(form, solved, body, COT_PREFIX)


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
