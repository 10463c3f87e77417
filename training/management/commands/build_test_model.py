from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from training.trainer.tiny import build_tiny_model


class Command(BaseCommand):
    help = (
        "Build the tiny test model (random-initialised LLaMA-style, hidden 64, 2 layers, vocab 512, locally "
        "trained tokenizer with a chat template) so training runs on a CPU with no download."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--path", help="target folder (default: TRAINING_MODELS_DIR/tiny-test, the catalogue's local_path)"
        )
        parser.add_argument("--force", action="store_true", help="rebuild even when the folder already has a model")
        parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")

    def handle(self, *args, **options):
        path = Path(options["path"] or Path(settings.TRAINING_MODELS_DIR) / "tiny-test").resolve()
        if (path / "config.json").exists() and not options["force"]:
            self.stdout.write(f"tiny test model already at {path} (use --force to rebuild)")
            return
        build_tiny_model(path, seed=options["seed"])
        self.stdout.write(f"built the tiny test model at {path}")
