import pytest
import torch

# The machine is shared: two threads at most for the tiny CPU models.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """The tiny test model (LLaMA-style, hidden 64, 2 layers, vocab 512, chat template), built once per session."""
    from training.trainer.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-test")
