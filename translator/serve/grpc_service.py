"""TensorFlow Serving's gRPC `PredictionService` (Predict, GetModelMetadata) over the batcher.

Built on the service definitions of the `tensorflow-serving-api` package, so Serving's own client
(`prediction_service_pb2_grpc.PredictionServiceStub`) works unchanged. It runs on `grpc.aio`, in the
event loop the HTTP server uses, and queues into the same batcher.
"""

from __future__ import annotations

import hmac

import grpc
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from translator.serve.batching import DecodeError, QueueFullError
from translator.serve.rest import ServedModel
from translator.serve.signatures import INPUT, SERVING_DEFAULT, SIGNATURES, candidates_needed, signature_def_map
from translator.serve.signatures import signature_outputs as outputs_for


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: ServedModel):
        self.model = model

    async def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:  # noqa: N802
        await self._check(request.model_spec, context)
        signature = request.model_spec.signature_name or SERVING_DEFAULT
        if signature not in SIGNATURES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature name: "{signature}" not found in signature def'
            )
        texts = await self._texts(request, context)
        try:
            result = await self.model.batcher.translate(texts, candidates_needed(signature, self.model.beam_size))
        except DecodeError as error:
            await context.abort(grpc.StatusCode.INTERNAL, str(error))
        except QueueFullError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = int(self.model.version) if self.model.version.isdigit() else 0
        response.model_spec.signature_name = signature
        wanted = set(request.output_filter)
        for name, column in outputs_for(signature, result.translations).items():
            if not wanted or name in wanted:
                response.outputs[name].CopyFrom(tensor_proto(column))
        return response

    async def GetModelMetadata(self, request, context) -> get_model_metadata_pb2.GetModelMetadataResponse:  # noqa: N802
        await self._check(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be ['signature_def']")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = int(self.model.version) if self.model.version.isdigit() else 0
        response.metadata["signature_def"].Pack(signature_def_map(self.model.beam_size))
        return response

    async def Classify(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this model has no classification signature")

    async def Regress(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this model has no regression signature")

    async def MultiInference(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served; use Predict")

    async def _check(self, spec, context) -> None:
        """The API key (metadata `authorization: Bearer KEY` or `x-api-key`) and the model name."""
        if self.model.api_key:
            metadata = dict(context.invocation_metadata() or ())
            offered = metadata.get("x-api-key") or metadata.get("authorization", "").removeprefix("Bearer ").strip()
            if not offered or not hmac.compare_digest(offered.encode(), self.model.api_key.encode()):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key")
        if spec.name != self.model.name:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")

    async def _texts(self, request: predict_pb2.PredictRequest, context) -> list[str]:
        limits = self.model.limits
        if set(request.inputs) != {INPUT}:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"inputs must be exactly {{'{INPUT}'}}, got {sorted(request.inputs)}"
            )
        tensor = request.inputs[INPUT]
        if tensor.dtype != types_pb2.DT_STRING or len(tensor.tensor_shape.dim) != 1:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"'{INPUT}' must be a DT_STRING tensor of shape [batch]"
            )
        if not tensor.string_val:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"'{INPUT}' is empty: send at least one sentence")
        if len(tensor.string_val) > limits.max_sentences:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"'{INPUT}' has {len(tensor.string_val)} sentences; at most {limits.max_sentences} per request",
            )
        try:
            return [value.decode("utf-8") for value in tensor.string_val]
        except UnicodeDecodeError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"'{INPUT}' holds bytes that are not valid UTF-8")


def tensor_proto(column: list) -> tensor_pb2.TensorProto:
    """A [batch] or [batch, n] column of str, float or bool as a TensorProto (what `tf.make_tensor_proto`
    gives, without a TensorFlow call on the event loop)."""
    rows = column if isinstance(column[0], list) else [[value] for value in column]
    flat = [value for row in rows for value in row]
    dims = [len(column), len(rows[0])] if isinstance(column[0], list) else [len(column)]
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
    if isinstance(flat[0], str):
        return tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=[v.encode("utf-8") for v in flat]
        )
    if isinstance(flat[0], bool):
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_BOOL, tensor_shape=shape, bool_val=flat)
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=flat)


def grpc_server(model: ServedModel, address: str) -> tuple[grpc.aio.Server, int]:
    """An unstarted `grpc.aio` server with the service, bound to `address`; returns it and its port."""
    limit = model.limits.max_bytes
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", 64 << 20)]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(model), server)
    port = server.add_insecure_port(address)
    return server, port
