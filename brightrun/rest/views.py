from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun import services
from brightrun.api import OwnedModelViewSet
from brightrun.filters import FilterSet
from brightrun.models import Notification
from brightrun.rest.serializers import MarkAllReadSerializer, NotificationSerializer, NotificationUpdateSerializer


class NotificationFilter(FilterSet):
    class Meta:
        model = Notification
        fields = ("is_read", "type", "priority")


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """The requesting user's notifications, newest first."""

    queryset = Notification.objects.all()
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering_fields = ("created_at",)

    @extend_schema(request=NotificationUpdateSerializer, responses=NotificationSerializer)
    def partial_update(self, request: Request, pk=None) -> Response:
        """Mark the notification read (``{"is_read": true}``) or unread again."""
        payload = NotificationUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        notification = services.notification_set_read(
            notification=self.get_object(), actor=request.user, is_read=payload.validated_data["is_read"]
        )
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"], url_path="mark-read")
    def mark_read(self, request: Request, pk=None) -> Response:
        notification = services.notification_set_read(notification=self.get_object(), actor=request.user)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=MarkAllReadSerializer)
    @action(detail=False, methods=["post"], url_path="mark-all-read")
    def mark_all_read(self, request: Request) -> Response:
        return Response({"marked": services.notification_mark_all_read(actor=request.user)})
