"""FastWordPiece gives exactly the ``tokenizers`` pipeline's ids, as far as it reads."""

import functools
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.runtime.fast_wordpiece import FastWordPiece


@functools.cache
def _pair(path: str):
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(f"{path}/tokenizer.json")
    full.no_truncation()
    full.no_padding()
    fast = FastWordPiece.for_tokenizer(
        full.to_str(), lambda w: full.encode(w, add_special_tokens=False).ids
    )
    return full, fast


# ASCII words, symbols and spaces, and characters the normalizer changes: accents, a Greek
# question mark that decomposes to ';', a combining accent after a space, CJK, non-ASCII
# spaces and punctuation, a zero-width space, letters whose lowercase differs by language.
_PIECES = [
    *string.ascii_letters[::5],
    *string.digits[::3],
    *string.punctuation,
    *" \n\t\r",
    *"éÉ日β\u00a0\u037e\u0301\u3000\u200b’—İΣ\ufffd",
    "Vitamin ",
    "unbelievably ",
    "TNF-α ",
    "covid19 ",
    "x" * 100,
    "x" * 101,
    "naïve café ",
]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_fast_path_gives_the_full_pipelines_ids(minilm_dir, text):
    full, fast = _pair(str(minilm_dir))
    assert fast.accepts(text)
    assert fast.ids(text) == full.encode(text, add_special_tokens=False).ids


@settings(max_examples=100, deadline=None)
@given(text=_TEXT, max_tokens=st.integers(1, 40))
def test_a_window_reads_at_least_its_tokens_and_stops_soon_after(minilm_dir, text, max_tokens):
    full, fast = _pair(str(minilm_dir))
    ref = full.encode(text, add_special_tokens=False).ids
    got = fast.ids(text, max_tokens)
    assert got == ref[: len(got)]
    assert len(got) >= min(max_tokens, len(ref))


def test_a_window_stops_reading_a_long_document_early(minilm_dir):
    _, fast = _pair(str(minilm_dir))
    text = "Vitamin D and calcium intake. " * 400  # 5 tokens per 30 characters
    got = fast.ids(text, 250)
    assert 250 <= len(got) <= 320  # about 6 characters read per missing token, not 2,000 tokens


def test_ascii_control_characters_and_special_tokens_are_refused(minilm_dir):
    """Texts the fast path would get wrong go to the full pipeline: the normalizer deletes
    control characters, and ``tokenizers`` matches an added token such as ``[SEP]`` as one
    id before it splits at the brackets."""
    _, fast = _pair(str(minilm_dir))
    assert not fast.accepts("bell\x07here") and fast.accepts("tab\tnew\nline\r")
    for text in ("see [SEP] here", "[CLS]", "a [MASK]", "[pad] x", "wörld [UNK]"):
        assert not fast.accepts(text), text
    assert fast.accepts("[brackets] and [sep-arated] words")


def test_other_pipelines_get_no_fast_path():
    spec = '{"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "model": {}}'
    assert FastWordPiece.for_tokenizer(spec, lambda w: []) is None
