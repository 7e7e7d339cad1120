"""The classification path never pays for the LLM stack: importing the app, the services and
the LLM package, and building and fitting the classification path, leaves torch unimported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import subprocess_env

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import learnloop.app
    import learnloop.services
    import learnloop.families.causal_lm
    from learnloop.config import Settings
    from learnloop.families import get_family
    from learnloop.services import build_services

    home = Path(sys.argv[1])
    services = build_services(Settings(home=home, database_url=f"sqlite:///{home}/ll.db", isolate_training=False))
    learnloop.app.create_app(services=services)
    family = get_family("tfidf-logreg")
    texts = ["good", "great", "fine", "bad", "awful", "poor"] * 3
    labels = ["1", "1", "1", "0", "0", "0"] * 3
    predictor = family.fit(texts, labels, label_set=["0", "1"], params={})
    predictor.predict_one("good")
    services.close()
    heavy = sorted(name for name in ("torch", "transformers", "peft", "trl") if name in sys.modules)
    print("HEAVY=" + ",".join(heavy))
    """
)


def test_the_classification_path_does_not_import_torch(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stdout, proc.stdout


def test_the_llm_package_exports_its_public_api() -> None:
    import learnloop.families.causal_lm as causal_lm

    assert all(hasattr(causal_lm, name) for name in causal_lm.__all__)
    assert {"GenerationEngine", "GenerationRequest", "resolve_base", "load_base", "attach_adapter", "fit_lora"} <= set(
        causal_lm.__all__
    )
