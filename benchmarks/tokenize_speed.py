"""Tokenization time per 100 (query, document) pairs, beside the peer's tokenizer, in one run.

The pairs are the first NFCorpus test query and its BM25 top 100 (long abstracts). Rows:
- peer: the model's ``tokenizer.json`` through ``tokenizers`` with its own pair truncation
  (``longest_first``), as sentence-transformers' CrossEncoder reads it;
- crossrank: ``WordPieceTokenizer.encode_pairs`` (word by word, stopping at the window), its
  memory of split words kept from earlier calls as in a running service;
- crossrank, warmed elsewhere: that memory holding only what ``--warm`` other documents of the
  corpus left in it (a service some time after start, meeting these documents for the first time);
- crossrank, cold: the same with that memory emptied before every call (a fresh process);
- crossrank, full texts: the same packing with every document tokenized whole (no spans).
Each row is checked to give the peer's token ids for every pair. Medians of ``--rounds``.

    python benchmarks/tokenize_speed.py --data ../../shared/data/nfcorpus --model DIR
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import common


def timed(fn, rounds: int, setup=None) -> float:
    """Median ms of ``fn()``; ``setup()`` runs before each call, outside the timing."""
    fn()  # warm
    times = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the NFCorpus BEIR folder")
    parser.add_argument("--model", type=Path, required=True, help="an artifact with tokenizer.json")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--warm", type=int, default=2000, help="other documents read first")
    parser.add_argument("--output", default=common.output_path("tokenize_speed.json"))
    args = parser.parse_args()
    from tokenizers import Tokenizer

    from crossrank.runtime.tokenization import pack_pairs
    from crossrank.runtime.wordpiece import WordPieceTokenizer

    query, docs = common.real_pairs(args.data, 100)
    path = args.model / "tokenizer.json"
    ours = WordPieceTokenizer(path)
    others = [t for t in common.dataset_and_bm25(args.data)[0].corpus_texts()[1] if t not in docs]
    ours.token_ids(others[: args.warm], 512)
    fast = ours._fast
    warmed = dict(fast._known), dict(fast._raw)

    def restore_warmed():
        fast._known, fast._raw = dict(warmed[0]), dict(warmed[1])

    results = []
    for window in (128, 256, 512):
        peer = Tokenizer.from_file(str(path))
        peer.enable_truncation(window, strategy="longest_first")
        peer.no_padding()

        def run_peer(peer=peer):
            return peer.encode_batch_fast([(query, d) for d in docs])

        def run_ours(window=window):
            return ours.encode_pairs([query] * len(docs), docs, window)

        def run_full(window=window):
            q = ours._tok.encode(query, add_special_tokens=False).ids
            full = [e.ids for e in ours._tok.encode_batch_fast(docs, add_special_tokens=False)]
            return pack_pairs([q] * len(docs), full, window, ours.cls_id, ours.sep_id, ours.pad_id)

        reference = [e.ids for e in run_peer()]

        def same_as_peer(enc, reference=reference) -> bool:
            rows = zip(enc.input_ids, enc.attention_mask, reference, strict=True)
            return all(row[mask.astype(bool)].tolist() == ref for row, mask, ref in rows)

        for name, fn, setup in (
            ("peer", run_peer, None),
            ("crossrank", run_ours, None),
            (f"crossrank, warmed on {args.warm} others", run_ours, restore_warmed),
            ("crossrank, cold", run_ours, fast.forget),
            ("crossrank, full texts", run_full, None),
        ):
            results.append(
                {
                    "window": window,
                    "path": name,
                    "ms_per_100_pairs": timed(fn, args.rounds, setup) * 100 / len(docs),
                    "same_ids_as_peer": True if name == "peer" else same_as_peer(fn()),
                }
            )
    info = common.machine()
    common.print_table(
        f"Tokenization, 100 NFCorpus pairs, median of {args.rounds} ({common.machine_line(info)})",
        [
            ("window", "window", ">7d"),
            ("  path", lambda r: f"  {r['path']}", "<36"),
            ("ms/100 pairs", "ms_per_100_pairs", ">13.1f"),
            ("  same ids", lambda r: f"  {r['same_ids_as_peer']}", "<10"),
        ],
        results,
    )
    common.write_json(args.output, {"machine": info, "rounds": args.rounds, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
