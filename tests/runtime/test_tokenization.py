import functools
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.runtime import fast_wordpiece
from crossrank.runtime.tokenization import HashingTokenizer, is_blank, pack_pairs, query_cap
from crossrank.runtime.wordpiece import WordPieceTokenizer, clip_at_whitespace
from tests.conftest import outputs_across_hash_seeds

TOK = HashingTokenizer(vocab_size=1000)
non_blank = st.text(min_size=1, max_size=400).filter(lambda s: not is_blank(s))


def test_packing_layout_and_type_ids():
    enc = pack_pairs([[10, 11]], [[20, 21, 22]], max_length=16, cls_id=2, sep_id=3, pad_id=0)
    assert enc.input_ids.tolist() == [[2, 10, 11, 3, 20, 21, 22, 3]]
    assert enc.token_type_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]
    assert enc.attention_mask.tolist() == [[1] * 8]
    assert all(a.dtype == np.int64 for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))


def test_padding_is_to_the_longest_pair_not_the_window():
    enc = pack_pairs([[5], [5]], [[6], [6, 7, 8]], max_length=64, cls_id=2, sep_id=3, pad_id=0)
    assert enc.input_ids.shape == (2, 7)
    assert enc.input_ids[0].tolist() == [2, 5, 3, 6, 3, 0, 0]
    assert enc.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0, 0]
    assert enc.token_type_ids[0].tolist() == [0, 0, 0, 1, 1, 0, 0]


@settings(max_examples=150, deadline=None)
@given(query=non_blank, document=non_blank, max_length=st.integers(8, 96))
def test_truncation_cuts_the_document_and_caps_the_query(query, document, max_length):
    enc = TOK.encode_pairs([query], [document], max_length)
    ids, types, mask = enc.input_ids[0], enc.token_type_ids[0], enc.attention_mask[0]
    n = int(mask.sum())
    assert n <= max_length and ids.shape[0] == n  # one pair: no padding
    assert ids[0] == TOK.cls_id and ids[n - 1] == TOK.sep_id
    q_ids, d_ids = TOK.ids(query), TOK.ids(document)
    budget = max_length - 3
    # The query is cut only when the pair does not fit, and never below the cap.
    kept_q = min(len(q_ids), max(query_cap(max_length), budget - len(d_ids)))
    assert ids[1 : 1 + kept_q].tolist() == q_ids[:kept_q]
    assert ids[1 + kept_q] == TOK.sep_id
    kept_d = n - kept_q - 3
    assert ids[2 + kept_q : 2 + kept_q + kept_d].tolist() == d_ids[:kept_d]
    assert kept_d == min(len(d_ids), max_length - 3 - kept_q)  # the document fills the window
    assert types[: kept_q + 2].tolist() == [0] * (kept_q + 2)
    assert types[kept_q + 2 : n].tolist() == [1] * (n - kept_q - 2)


def test_a_long_query_keeps_what_fits_beside_a_short_document():
    enc = TOK.encode_pairs([" ".join(f"w{i}" for i in range(50))], ["short doc"], 128)
    assert int(enc.attention_mask.sum()) == 50 + 2 + 3  # nothing cut: it all fits


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_blank_query_or_document_is_rejected(bad):
    with pytest.raises(ValueError, match="query 0: expected non-empty text"):
        TOK.encode_pairs([bad], ["doc"], 32)
    with pytest.raises(ValueError, match="document 0: expected non-empty text"):
        TOK.encode_pairs(["q"], [bad], 32)


def test_mismatched_lengths_and_str_are_rejected():
    with pytest.raises(ValueError, match="as many queries as documents"):
        TOK.encode_pairs(["a", "b"], ["c"], 32)
    with pytest.raises(TypeError, match="got a str"):
        TOK.encode_pairs("a", ["c"], 32)


def test_window_too_small_is_rejected():
    with pytest.raises(ValueError, match="max_length >= 8"):
        TOK.encode_pairs(["a"], ["b"], 4)


def test_hashing_ids_are_the_same_in_separate_processes():
    text = "Café au lait, naïve façade — 東京 2024!"
    code = f"from crossrank.runtime.tokenization import HashingTokenizer; print(HashingTokenizer(8192).ids({text!r}))"
    outs = outputs_across_hash_seeds(code)
    assert len(outs) == 1
    assert outs.pop().strip() == str(HashingTokenizer(8192).ids(text))


def test_wordpiece_ignores_the_files_baked_in_truncation_and_padding(minilm_dir):
    tok = WordPieceTokenizer(minilm_dir / "tokenizer.json")
    long_doc = "the cat sat on the mat " * 100
    enc = tok.encode_pairs(["where did the cat sit", "cat"], [long_doc, "a mat"], 256)
    assert enc.input_ids.shape == (2, 256)  # the file truncates at 128 and pads to 128
    assert int(enc.attention_mask[1].sum()) == 6  # [CLS] cat [SEP] a mat [SEP]
    assert enc.input_ids[0, 0] == tok.cls_id and enc.input_ids[0, -1] == tok.sep_id


def test_wordpiece_matches_transformers_pair_encoding(minilm_dir):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True)
    tok = WordPieceTokenizer(minilm_dir)
    q, d = (
        "What causes Vitamin-D deficiency?",
        "Low sun exposure, e.g. in winter, and diets poor in fish.",
    )
    ref = hf(q, d)
    enc = tok.encode_pairs([q], [d], 128)
    assert enc.input_ids[0].tolist() == ref["input_ids"]
    assert enc.token_type_ids[0].tolist() == ref["token_type_ids"]


def test_wordpiece_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        WordPieceTokenizer(tmp_path)


@functools.cache
def _minilm_tokenizer(path: str) -> WordPieceTokenizer:
    return WordPieceTokenizer(path)


_PIECES = [
    *"abc xyz.,-\n\t\r\x07\x00é日β\u00a0\u037e\u0301\u3000\u200b’—İΣ",
    "unbelievable ",
    "Vitamin ",
    "DNA-binding ",
    "[SEP]",
    "  ",
    "x" * 101,
]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=150).map("".join)


_NON_BLANK = _TEXT.filter(lambda s: not is_blank(s))


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(st.tuples(_NON_BLANK, _NON_BLANK), min_size=1, max_size=4),
    max_length=st.sampled_from([8, 16, 40]),
)
def test_wordpiece_fast_paths_give_exactly_the_full_texts_tokens(minilm_dir, pairs, max_length):
    """The whitespace clip, the document budget beside the shortest query and the ASCII
    normalizer shortcut change nothing: each packed pair equals the one built from the plain
    tokenizer's full encodings, whatever the other queries of the call."""
    tok = _minilm_tokenizer(str(minilm_dir))
    plain = tok._tok
    queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
    ref = pack_pairs(
        [plain.encode(q, add_special_tokens=False).ids for q in queries],
        [plain.encode(d, add_special_tokens=False).ids for d in documents],
        max_length,
        tok.cls_id,
        tok.sep_id,
        tok.pad_id,
    )
    # At two characters per token the first spans are short and read only as far as needed,
    # so a budget one token short would show.
    for chars_per_token in (fast_wordpiece.CHARS_PER_TOKEN, 2):
        with patch.object(fast_wordpiece, "CHARS_PER_TOKEN", chars_per_token):
            enc = tok.encode_pairs(queries, documents, max_length)
        assert enc.input_ids.tolist() == ref.input_ids.tolist()
        assert enc.token_type_ids.tolist() == ref.token_type_ids.tolist()


def test_clip_at_whitespace_keeps_short_texts_and_unbroken_words():
    assert clip_at_whitespace("short text", 100) == "short text"
    assert clip_at_whitespace("alpha beta gamma", 12) == "alpha beta"
    assert clip_at_whitespace("x" * 50, 10) == "x" * 50  # no whitespace: nothing is cut
    # A word longer than the span ends it at the next whitespace, not at the end of the text.
    assert clip_at_whitespace("alphabetical beta gamma", 3) == "alphabetical"
    assert clip_at_whitespace("alphabetical\tbeta gamma", 3) == "alphabetical"


def test_invisible_text_is_blank():
    for blank in ("", "  ", "\u200b", "\ufeff\u200c", "\u2028\t", "\x1b"):
        assert is_blank(blank), repr(blank)
        with pytest.raises(ValueError, match="expected non-empty text"):
            TOK.encode_pairs(["q"], [blank], 32)
    assert not is_blank("a\u200b") and not is_blank("é")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=12))
def test_a_text_that_is_not_blank_gives_the_real_tokenizer_something_to_read(minilm_dir, text):
    # A text of only what the normaliser deletes would be scored as [CLS] [SEP] doc [SEP]:
    # is_blank must catch it, so a request with it is refused instead.
    if not is_blank(text):
        assert _minilm_tokenizer(str(minilm_dir)).token_ids([text], 64)[0], repr(text)


def test_what_the_normaliser_deletes_is_blank():
    for blank in ("\ufffd", "\ue000", "\u0301\u0301", " \ufffd\u200b"):
        assert is_blank(blank), repr(blank)
    assert not is_blank("e\u0301") and not is_blank("\ufffdx")


# Far more characters per token than the first span assumes, so most spans are continued.
_SPARSE = st.lists(
    st.sampled_from(["word ", "          ", "\t\t\t\n", "x", "é ", "日", "Vitamin-D "]),
    max_size=120,
).map("".join)


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(_SPARSE.filter(lambda s: not is_blank(s)), min_size=1, max_size=6),
    max_tokens=st.integers(1, 60),
)
def test_wordpiece_continued_spans_give_the_full_texts_first_tokens(minilm_dir, texts, max_tokens):
    """Texts whose first span gives too few tokens (many spaces per token) are continued from
    the cut; the first ``max_tokens`` ids equal the full encoding's, in every text's place."""
    tok = _minilm_tokenizer(str(minilm_dir))
    for got in (tok.token_ids(texts, max_tokens), tok._span_ids(texts, max_tokens)):
        for text, ids in zip(texts, got, strict=True):
            full = tok._tok.encode(text, add_special_tokens=False).ids
            assert ids[:max_tokens] == full[:max_tokens]
