from django import forms

from conversations.models import EmotionalArc, GenerationBatch, Persona, TrainingTopic


class _KeyChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return str(obj.name if not isinstance(obj, Persona) else f"{obj.name} - {obj.archetype}")


class _KeyMultiChoice(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return str(obj.name if not isinstance(obj, Persona) else f"{obj.name} - {obj.archetype}")


class SingleGenerationForm(forms.Form):
    persona = _KeyChoice(queryset=Persona.objects.active(), to_field_name="key")
    emotional_arc = _KeyChoice(queryset=EmotionalArc.objects.active(), to_field_name="key")
    training_topic = _KeyChoice(queryset=TrainingTopic.objects.active(), to_field_name="key")
    temperature = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, help_text="0–1. Empty: 0.70 (0.65 for beginner topics)."
    )


class BulkGenerationForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    personas = _KeyMultiChoice(queryset=Persona.objects.active(), to_field_name="key")
    emotional_arcs = _KeyMultiChoice(queryset=EmotionalArc.objects.active(), to_field_name="key")
    training_topics = _KeyMultiChoice(queryset=TrainingTopic.objects.active(), to_field_name="key")
    repeat = forms.IntegerField(min_value=1, max_value=100, initial=1)
    mode = forms.ChoiceField(
        choices=GenerationBatch.Mode.choices,
        initial=GenerationBatch.Mode.LIVE,
        help_text="Message Batches costs half and finishes within 24 h (usually under an hour).",
    )
    priority = forms.ChoiceField(choices=GenerationBatch.Priority.choices, initial=GenerationBatch.Priority.NORMAL)
    concurrency = forms.IntegerField(min_value=1, max_value=10, initial=3)
    error_policy = forms.ChoiceField(
        choices=GenerationBatch.ErrorPolicy.choices, initial=GenerationBatch.ErrorPolicy.CONTINUE
    )
