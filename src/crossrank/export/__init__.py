"""Export to ONNX: tracing, parity and int8 checks, and the sources that can be exported."""
