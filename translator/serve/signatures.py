"""The two SavedModel signatures (`translator.export`), as the server answers them.

REST and gRPC clients name a signature and get its outputs, whatever translator sits behind the
server (a run directory, a SavedModel or a CTranslate2 export): this module is the one place that
knows their input and output names, types and shapes.

    serving_default:  text [batch] string → translation [batch] string, score [batch] float32,
                      truncated [batch] bool
    translate_nbest:  text [batch] string → translations [batch, n] string, scores [batch, n] float32,
                      truncated [batch] bool      (n: the beam size)
"""

from __future__ import annotations

import dataclasses

from translator.translation import Translation

INPUT = "text"
SERVING_DEFAULT = "serving_default"
TRANSLATE_NBEST = "translate_nbest"
METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass(frozen=True)
class Output:
    name: str
    dtype: str  # a tensorflow.DataType name: DT_STRING, DT_FLOAT, DT_BOOL
    per_candidate: bool  # shape [batch, n] rather than [batch]


SIGNATURES: dict[str, tuple[Output, ...]] = {
    SERVING_DEFAULT: (
        Output("translation", "DT_STRING", False),
        Output("score", "DT_FLOAT", False),
        Output("truncated", "DT_BOOL", False),
    ),
    TRANSLATE_NBEST: (
        Output("translations", "DT_STRING", True),
        Output("scores", "DT_FLOAT", True),
        Output("truncated", "DT_BOOL", False),
    ),
}


def candidates_needed(signature: str, beam_size: int) -> int:
    """How many translations per sentence a signature returns."""
    return beam_size if signature == TRANSLATE_NBEST else 1


def signature_outputs(signature: str, results: list[list[Translation]]) -> dict[str, list]:
    """Columns of a signature's outputs for `results` (one candidate list per input, best first)."""
    if signature == TRANSLATE_NBEST:
        return {
            "translations": [[candidate.text for candidate in candidates] for candidates in results],
            "scores": [[candidate.score for candidate in candidates] for candidates in results],
            "truncated": [candidates[0].truncated for candidates in results],
        }
    return {
        "translation": [candidates[0].text for candidates in results],
        "score": [candidates[0].score for candidates in results],
        "truncated": [candidates[0].truncated for candidates in results],
    }


def signature_def_map(beam_size: int):
    """`tensorflow.serving.SignatureDefMap` for GetModelMetadata (gRPC) and `/metadata` (REST): the
    same names, types and shapes as the exported SavedModel's `saved_model_cli show`."""
    from tensorflow.core.framework import tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    def tensor_info(name: str, dtype: str, dims: list[int]) -> meta_graph_pb2.TensorInfo:
        shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
        return meta_graph_pb2.TensorInfo(name=name, dtype=types_pb2.DataType.Value(dtype), tensor_shape=shape)

    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, outputs in SIGNATURES.items():
        definition = signatures.signature_def[name]
        definition.method_name = METHOD
        definition.inputs[INPUT].CopyFrom(tensor_info(f"{name}_{INPUT}:0", "DT_STRING", [-1]))
        for index, output in enumerate(outputs):
            dims = [-1, beam_size] if output.per_candidate else [-1]
            definition.outputs[output.name].CopyFrom(
                tensor_info(f"StatefulPartitionedCall:{index}", output.dtype, dims)
            )
    return signatures
