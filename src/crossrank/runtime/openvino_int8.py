"""int8 weights for OpenVINO: the MatMul weights stored in int8, one scale per output channel.

Each MatMul whose weight is a constant ``[K, N]`` matrix gets int8 weights with one symmetric
scale per output channel, written as the pattern OpenVINO's CPU plugin reads as compressed
weights (``Constant(int8) -> Convert -> Multiply(scale) -> MatMul``). What the plugin does with
them depends on the activations' precision (kernel names from ``benchmarks/op_profile.py``):
- on a CPU with bfloat16 (AVX512-BF16, AMX) it computes in bf16 and expands the int8 weights
  inside its bf16 GEMM (``FullyConnectedCompressed [brgemm_avx512_bf16]``): half the weight
  memory of bf16, bf16's arithmetic;
- with fp32 activations (a CPU with VNNI and no bf16) it quantizes the activations as the
  graph runs, one scale per token and group of ``DYNAMIC_GROUP`` input channels, and
  multiplies in int8.
Either way a pair's arithmetic never mixes with another pair's, so a score does not depend on
its batch-mates, unlike onnxruntime's dynamic int8, which scales a whole call together. The
fp32 ``model.onnx`` is rewritten at load; nothing new is stored in the artifact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Input channels per activation scale (the plugin's default; a multiple of 16).
DYNAMIC_GROUP = 32


def quantize_columns(weight: np.ndarray, reduce_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weight, float32 scale): symmetric, one scale per output channel (the slice along
    ``reduce_axis``, the input channels, shares it), ``weight ~= int8 * scale``."""
    weight = np.asarray(weight, dtype=np.float32)
    scale = np.abs(weight).max(axis=reduce_axis, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.round(weight / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def compress_matmul_weights(model: Any) -> int:
    """Rewrite every MatMul of ``model`` (an ``openvino.Model``) whose second input is a 2-d
    float constant with more than one output channel into int8 weights and a per-channel
    scale; returns how many were rewritten. A one-logit head stays in float."""
    import openvino.opset13 as ops

    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        source = op.input_value(1).get_node()
        if source.get_type_name() != "Constant":
            continue
        weight = source.get_data()
        if weight.ndim != 2 or weight.dtype.kind != "f":
            continue
        transposed = bool(op.get_attributes().get("transpose_b", False))
        outputs_axis = 0 if transposed else 1
        if weight.shape[outputs_axis] == 1:
            continue
        q, scale = quantize_columns(weight, reduce_axis=1 - outputs_axis)
        dequantized = ops.multiply(ops.convert(ops.constant(q), "f32"), ops.constant(scale))
        op.input(1).replace_source_output(dequantized.output(0))
        count += 1
    return count
