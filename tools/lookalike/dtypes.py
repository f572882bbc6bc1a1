"""Every published dtype variant, made with onnxruntime's own tools from the fp32 graphs.
File suffixes as the onnx-community repos name them: name.onnx (fp32), name_{dtype}.onnx otherwise."""
import logging

import onnx

DTYPES = ("fp32", "fp16", "q4", "q4f16", "int8", "uint8", "quantized", "bnb4")

# Graph I/O kept float32 in the fp16 files (issue 13: the published fp16 decoder takes float32 inputs_embeds and
# keeps its KV cache float16). Vision and embed keep float32 I/O so features and embeddings stay interchangeable.
KEEP_IO = {"decoder_model_merged": ["inputs_embeds", "attention_mask", "position_ids", "logits"],
           "vision_encoder": True, "embed_tokens": True}


def suffix(dtype):
    return "" if dtype == "fp32" else f"_{dtype}"


def _fp16(model, part):
    from onnxruntime.transformers.float16 import convert_float_to_float16
    keep = KEEP_IO[part]
    if keep is True:
        return convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    names = [i.name for i in model.graph.input] + [o.name for o in model.graph.output]
    return convert_float_to_float16(model, keep_io_types=[n for n in keep if n in names], disable_shape_infer=True)


def _nbits(model, bits=4):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    # block 32, symmetric, accuracy_level 4: the genai builder's defaults for the CPU and WebGPU providers.
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=32, is_symmetric=True, accuracy_level=4)
    q.process()
    return q.model.model


def _dynamic(model, weight_type):
    import os
    import tempfile
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.onnx"), os.path.join(d, "out.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=getattr(QuantType, weight_type), op_types_to_quantize=["MatMul", "Gather"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return onnx.load(dst)


def _bnb4(model):
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer
    q = MatMulBnb4Quantizer(model, quant_type=1, block_size=64)  # nf4
    q.process()
    return q.model.model


def convert(model, dtype, part):
    """The `dtype` variant of one fp32 component (`part`: decoder_model_merged, vision_encoder, embed_tokens)."""
    logging.getLogger().setLevel(logging.WARNING)  # the quantizers log every tensor at INFO
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if dtype == "fp32":
        return m
    if dtype == "fp16":
        return _fp16(m, part)
    if dtype == "q4":
        return _nbits(m) if part != "embed_tokens" else m
    if dtype == "q4f16":
        return _nbits(_fp16(m, part)) if part != "embed_tokens" else _fp16(m, part)
    if dtype == "int8":
        return _dynamic(m, "QInt8")
    if dtype in ("uint8", "quantized"):
        return _dynamic(m, "QUInt8")
    if dtype == "bnb4":
        return _bnb4(m) if part != "embed_tokens" else m
    raise SystemExit(f"error: unknown dtype {dtype} (known: {', '.join(DTYPES)})")
