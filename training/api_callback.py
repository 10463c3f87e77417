"""``POST /api/v1/training-jobs/{id}/callback/``: progress and outcome reports from remote training workers.

Not a user endpoint: the caller is a worker holding the job's callback secret, and the HMAC signature of the raw
body is the authentication (no session, token or CSRF). See :mod:`training.services.remote_callbacks` for the
body format. Registered in ``brightrun/urls.py`` before the router's ``training-jobs`` routes.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from training.services.remote_callbacks import SIGNATURE_HEADER, training_job_callback


class TrainingJobCallbackSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=["stage", "started", "metric", "event", "completed", "failed", "cancelled"])
    stage = serializers.CharField(required=False, help_text="stage: the stage text")
    progress = serializers.FloatField(required=False, help_text="stage: 0–100")
    total_steps = serializers.IntegerField(required=False, help_text="started")
    device = serializers.CharField(required=False, help_text="started, completed")
    step = serializers.IntegerField(required=False, help_text="metric")
    epoch = serializers.FloatField(required=False, help_text="metric")
    training_loss = serializers.FloatField(required=False)
    validation_loss = serializers.FloatField(required=False)
    learning_rate = serializers.FloatField(required=False)
    grad_norm = serializers.FloatField(required=False)
    tokens_per_second = serializers.FloatField(required=False, help_text="metric, completed")
    kind = serializers.CharField(required=False, help_text="event: epoch_end | checkpoint | stage")
    message = serializers.CharField(required=False, help_text="event, failed")
    data = serializers.JSONField(required=False, help_text="event")
    files = serializers.JSONField(required=False, help_text="completed: [{name, size, sha256}]")
    code = serializers.CharField(required=False, help_text="failed: trainer error code")
    hint = serializers.CharField(required=False, help_text="failed")


_ANSWER = inline_serializer(
    "TrainingJobCallbackAnswer",
    {"ok": serializers.BooleanField(), "cancel": serializers.BooleanField(help_text="Stop at the next step.")},
)


class TrainingJobCallbackView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # the service checks the body's signature
    http_method_names = ["post"]  # every other method (OPTIONS included) is a 405
    parser_classes = [JSONParser]  # for the schema only: the view verifies and parses the raw body itself

    @extend_schema(
        operation_id="training_jobs_callback",
        tags=["training-jobs"],
        summary="Report progress or an outcome (remote workers, HMAC-signed)",
        auth=[],
        request=TrainingJobCallbackSerializer,
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="sha256=<hex HMAC-SHA256 of the raw body with the job's callback token>",
            )
        ],
        responses={
            200: _ANSWER,
            400: OpenApiResponse(description="invalid_callback: malformed body"),
            403: OpenApiResponse(description="invalid_signature: bad or missing signature, or unknown job"),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        answer = training_job_callback(job_id=pk, body=request.body, signature=request.headers.get(SIGNATURE_HEADER))
        return Response(answer)


def urlpatterns() -> list[URLPattern]:
    """The callback route; include it before the router's ``training-jobs`` routes."""
    return [
        path(
            "training-jobs/<str:pk>/callback/",
            TrainingJobCallbackView.as_view(),
            name="training-job-callback",
        )
    ]
