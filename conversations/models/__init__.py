from conversations.models.conversation import (
    Conversation,
    ConversationQuerySet,
    NearDuplicateGroup,
    ReviewAction,
    Turn,
)
from conversations.models.generation import (
    BatchItem,
    FailedGeneration,
    GenerationBatch,
    GenerationLog,
    MessageBatchSubmission,
    ModelPrice,
    RateLimitWindow,
)
from conversations.models.scaffolding import (
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    Tier,
    TrainingTopic,
    VerticalProfile,
)

__all__ = [
    "BatchItem",
    "Conversation",
    "ConversationQuerySet",
    "EmotionalArc",
    "FailedGeneration",
    "GenerationBatch",
    "GenerationLog",
    "MessageBatchSubmission",
    "ModelPrice",
    "NearDuplicateGroup",
    "Persona",
    "PromptTemplate",
    "PromptTemplateVersion",
    "RateLimitWindow",
    "ReviewAction",
    "Tier",
    "TrainingTopic",
    "Turn",
    "VerticalProfile",
]
