import numpy as np
import pytest
import torch

from crossrank.export import export
from crossrank.export_sources import from_hf
from crossrank.runtime import OnnxReranker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_cross_encoder(minilm_dir, tmp_path_factory):
    """A BertForSequenceClassification (1 label) on the MiniLM weights, saved locally."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    out = tmp_path_factory.mktemp("hf-ce")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        str(minilm_dir), num_labels=1, local_files_only=True
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True).save_pretrained(out)
    return out


def test_from_hf_scores_equal_transformers(hf_cross_encoder, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    item, source = from_hf(str(hf_cross_encoder), max_length=256)
    manifest = export(item, tmp_path / "onnx", source=source)
    assert manifest["tokenizer"]["kind"] == "wordpiece" and "tokenizer.json" in manifest["files"]
    assert manifest["parity"]["max_abs_diff"] <= 1e-4

    query = "does vitamin d reduce the risk of falls in older adults"
    docs = [
        "Vitamin D supplementation reduced falls by 19% in a meta-analysis of older people.",
        "Coffee consumption and the risk of type 2 diabetes.",
        "Falls are a leading cause of injury among adults over 65. " * 3,
    ]
    hf = AutoModelForSequenceClassification.from_pretrained(
        str(hf_cross_encoder), local_files_only=True
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(hf_cross_encoder), local_files_only=True)
    with torch.no_grad():
        ref = (
            hf(**tok([query] * len(docs), docs, padding=True, return_tensors="pt"))
            .logits[:, 0]
            .numpy()
        )
    ours = OnnxReranker(tmp_path / "onnx").score(query, docs)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
