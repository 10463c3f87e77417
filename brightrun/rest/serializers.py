from rest_framework import serializers

from brightrun.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "type", "priority", "title", "message", "link", "is_read", "read_at", "created_at")
        read_only_fields = fields


class MarkAllReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(read_only=True)


class NotificationUpdateSerializer(serializers.Serializer):
    is_read = serializers.BooleanField()
