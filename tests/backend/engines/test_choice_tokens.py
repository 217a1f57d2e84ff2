"""One function picks the choice tokens for every engine; scores from a top-k list."""

from __future__ import annotations

import math
from typing import Any

import pytest

from backend.engines.choice_tokens import (
    choice_token_id,
    scores_from_top,
    token_is_choice,
)
from backend.errors import ChoiceTokenError


def sentencepiece_tokenizer() -> Any:
    """A SentencePiece-style (Unigram + Metaspace ``▁``) tokenizer trained offline, in-process,
    as Llama-2/Mistral/Gemma tokenizers are: ``"A"`` alone encodes as ``▁A``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    corpus = ["The answer is: (A) and (B).", "A B A B (A) (B) the answer", "Answer A or B?",
              "Which response is better, (A) or (B)? The answer is: (B)"] * 50
    trainer = trainers.UnigramTrainer(vocab_size=80, special_tokens=["<unk>"], unk_token="<unk>",
                                      initial_alphabet=list("AB()"))
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def test_sentencepiece_picks_the_token_that_follows_the_open_paren() -> None:
    tok = sentencepiece_tokenizer()
    alone = tok.convert_ids_to_tokens(tok.encode("A", add_special_tokens=False))
    assert alone[0].startswith("▁")  # the word-initial piece a naive encode would pick
    for choice in ("A", "B"):
        token = choice_token_id(tok, choice)
        assert tok.convert_ids_to_tokens(token) == choice  # not ▁A
        after = tok.encode("The answer is: (" + choice, add_special_tokens=False)
        assert after[-1] == token  # exactly the token the model reads after "("


def test_byte_level_bpe_picks_plain_letters() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["The answer is: (A) or (B)"] * 20, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    assert fast.convert_ids_to_tokens(choice_token_id(fast, "B")) == "B"


def test_multi_token_choice_is_refused() -> None:
    with pytest.raises(ChoiceTokenError, match=r"'Absolutely'.*not a single token"):
        choice_token_id(sentencepiece_tokenizer(), "Absolutely")


@pytest.mark.parametrize("token", ["A", " A", "▁A", "ĠA", "A\n"])
def test_token_texts_that_spell_a_choice(token: str) -> None:
    assert token_is_choice(token, "A")
    assert not token_is_choice(token, "B")


def test_both_choices_listed_gives_exact_renormalised_probabilities() -> None:
    s = scores_from_top([("B", -0.37), ("A", -1.25), ("C", -4.2)], ["A", "B"], prompt_sent="p")
    assert s.scored and s.bounded == ()
    assert s.probs["A"] == pytest.approx(1 / (1 + math.exp(-0.37 + 1.25)))


def test_spellings_of_one_choice_are_merged() -> None:
    s = scores_from_top([("A", math.log(0.2)), (" A", math.log(0.2)), ("B", math.log(0.4))],
                        ["A", "B"], prompt_sent="p")
    assert s.probs["A"] == pytest.approx(0.5)


def test_choice_missing_from_top_k_is_bounded_never_zero() -> None:
    """The reported bug: A at -4.8 in the top-20, B absent, read as p(A)=1.0."""
    top = [("When", -0.5), ("A", -4.8), ("The", -1.0), ("You", -6.0)]
    s = scores_from_top(top, ["A", "B"], prompt_sent="p")
    assert s.bounded == ("B",)
    assert s.logprobs["B"] is None
    assert 0.0 < s.probs["B"] <= s.probs["A"] < 1.0  # B is at most the smallest listed
    assert s.probs["A"] == pytest.approx(math.exp(-4.8) / (math.exp(-4.8) + math.exp(-6.0)))
    assert s.top_tokens["When"] == -0.5  # evidence kept


def test_no_choice_in_top_k_is_unscorable_with_evidence() -> None:
    s = scores_from_top([("When", -0.5), ("The", -1.0)], ["A", "B"], prompt_sent="p")
    assert not s.scored and s.probs == {}
    assert "top: 'When' -0.50" in (s.unscorable or "")
    assert set(s.top_tokens) == {"When", "The"}


def test_no_logprobs_at_all_is_unscorable() -> None:
    s = scores_from_top([], ["A", "B"], prompt_sent="p")
    assert s.unscorable and "no next-token" in s.unscorable
