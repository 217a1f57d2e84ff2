"""The engine seam's shared types."""



def test_a_nul_in_model_output_becomes_a_replacement_character() -> None:
    # a byte-level vocabulary can emit NUL; PostgreSQL text columns refuse it (seen with a
    # trained tiny-model policy on the PostgreSQL pass)
    from backend.engines.base import Generation, storable_text

    gen = Generation(text="a\x00b", prompt_sent="p")
    assert gen.text == "a\ufffdb"
    assert storable_text("plain") == "plain"
