"""The training configure form (SPEC §10, §13.2): parses the page's fields; the services check the rules.

Ranges are not repeated here: ``hyperparameters_resolve`` checks every value against ``RANGES`` and reports all
bad fields at once, and the view maps its ``errors`` onto these fields. The form only turns text into numbers
and scopes the dataset choice to the user's ready datasets.
"""

from __future__ import annotations

from typing import Any

from django import forms

from datasets.models import Dataset
from training.models import BaseModel, GpuType, HyperparameterPreset, TrainingJob
from training.services.hyperparameters import (
    DEFAULT_MAX_SEQ_LENGTH,
    DEFAULT_SEED,
    FALLBACK,
    TARGET_MODULES,
    preset_values,
)

#: Hyperparameters that come from the preset unless "customise" is ticked.
PRESET_FIELDS: tuple[str, ...] = (
    "rank",
    "alpha",
    "dropout",
    "learning_rate",
    "epochs",
    "batch_size",
    "grad_accum",
    "warmup_ratio",
)
#: Hyperparameters that are not preset columns: always taken from the form.
RUN_FIELDS: tuple[str, ...] = ("max_seq_length", "seed")
INTEGER_FIELDS = {"rank", "alpha", "epochs", "batch_size", "grad_accum", "max_seq_length", "seed"}


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Dataset) -> str:
        return f"{obj.name} — {obj.example_count:,} conversation{'s' if obj.example_count != 1 else ''}"


class TrainingConfigureForm(forms.Form):
    """Every field of the configure page; ``overrides()`` gives the hyperparameters the user chose."""

    name = forms.CharField(required=False, max_length=200)
    dataset = DatasetChoiceField(queryset=Dataset.objects.none(), empty_label=None)
    base_model = forms.ModelChoiceField(queryset=BaseModel.objects.none(), empty_label=None)
    preset = forms.ModelChoiceField(queryset=HyperparameterPreset.objects.none(), empty_label=None)
    gpu_type = forms.ModelChoiceField(queryset=GpuType.objects.none(), empty_label=None)
    gpu_count = forms.IntegerField(min_value=1)
    backend = forms.ChoiceField(choices=TrainingJob.Backend.choices)
    customise = forms.BooleanField(required=False)
    rank = forms.IntegerField(required=False)
    alpha = forms.IntegerField(required=False)
    dropout = forms.FloatField(required=False)
    learning_rate = forms.FloatField(required=False)
    epochs = forms.IntegerField(required=False)
    batch_size = forms.IntegerField(required=False)
    grad_accum = forms.IntegerField(required=False)
    warmup_ratio = forms.FloatField(required=False)
    target_modules = forms.MultipleChoiceField(required=False, choices=[(m, m) for m in TARGET_MODULES])
    max_seq_length = forms.IntegerField(required=False)
    seed = forms.IntegerField(required=False)

    def __init__(self, *args: Any, user, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.for_user(user).ready().order_by("-created_at")
        self.fields["base_model"].queryset = BaseModel.objects.active()
        self.fields["preset"].queryset = HyperparameterPreset.objects.active()
        self.fields["gpu_type"].queryset = GpuType.objects.active()

    def overrides(self) -> dict[str, Any]:
        """The values that replace the preset's: sequence length and seed always, the rest when customising."""
        data = self.cleaned_data
        names = RUN_FIELDS + (PRESET_FIELDS if data.get("customise") else ())
        values = {name: data[name] for name in names if data.get(name) is not None}
        if data.get("customise"):
            values["target_modules"] = list(data.get("target_modules") or [])
        return values


def initial_hyperparameters(preset: HyperparameterPreset | None) -> dict[str, Any]:
    """What the advanced fields show before the user customises: the preset's values and the run defaults."""
    values = dict(FALLBACK)
    if preset is not None:
        values.update(preset_values(preset))
    values["max_seq_length"] = DEFAULT_MAX_SEQ_LENGTH
    values["seed"] = DEFAULT_SEED
    return values
