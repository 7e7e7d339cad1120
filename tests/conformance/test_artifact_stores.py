"""Every artifact store passes the same checks: opened from its URL, it returns relative keys,
reads back what it wrote, replaces atomically, refuses bad keys and says what is missing.
A new store is one more entry in ``STORE_URLS``; ``s3://`` runs against a real S3-compatible
server process (moto) on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from learnloop.artifacts import STORES, ArtifactStore, LocalArtifactStore, open_store
from learnloop.config import Settings
from learnloop.errors import ArtifactError, MissingExtraError, ValidationError

STORE_URLS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "file": lambda _, tmp: (tmp / "store root with space").as_uri(),
    "s3": lambda request, _: str(request.getfixturevalue("s3_url")),
}


def test_every_registered_store_is_in_the_suite() -> None:
    assert set(STORES) == set(STORE_URLS)


@pytest.fixture(params=sorted(STORE_URLS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    return open_store(STORE_URLS[request.param](request, tmp_path))


def a_directory(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for file, data in files.items():
        (directory / file).write_bytes(data)
    return directory


def test_bytes_round_trip_under_a_relative_key(store: ArtifactStore) -> None:
    key = store.put_bytes("snapshots/m/abc.jsonl.gz", b"\x00rows\xff")
    assert key == "snapshots/m/abc.jsonl.gz"
    assert store.get_bytes(key) == b"\x00rows\xff"
    assert store.put_bytes(key, b"second") == key
    assert store.get_bytes(key) == b"second"


def test_directory_round_trip_and_replacement(store: ArtifactStore, tmp_path: Path) -> None:
    first = a_directory(tmp_path, "first", {"model.bin": b"one", "manifest.json": b"{}"})
    key = store.put_dir("models/m/abc-v1", first)
    assert key == "models/m/abc-v1"
    local = store.get_dir(key)
    assert {p.name: p.read_bytes() for p in local.iterdir()} == {"model.bin": b"one", "manifest.json": b"{}"}
    second = a_directory(tmp_path, "second", {"other.bin": b"two"})
    store.put_dir(key, second)
    assert {p.name: p.read_bytes() for p in store.get_dir(key).iterdir()} == {"other.bin": b"two"}


def test_a_store_opened_again_from_its_url_reads_the_same_keys(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes("drift/m/abc-v1.json", b"{}")
    store.put_dir("models/m/abc-v1", a_directory(tmp_path, "d", {"f": b"x"}))
    again = open_store(store.url)
    assert again.url == store.url
    assert again.get_bytes("drift/m/abc-v1.json") == b"{}"
    assert (again.get_dir("models/m/abc-v1") / "f").read_bytes() == b"x"


@pytest.mark.parametrize("key", ["", "/models/m", "models//m", "models/../../etc", "./m", "a\\b", "s3://bucket/k"])
def test_bad_keys_are_refused(store: ArtifactStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="bad artifact key"):
        store.put_bytes(key, b"x")
    with pytest.raises(ArtifactError, match="bad artifact key"):
        store.put_dir(key, a_directory(tmp_path, "d", {"f": b"x"}))
    with pytest.raises(ArtifactError):
        store.get_bytes(key)
    with pytest.raises(ArtifactError):
        store.get_dir(key)


def test_missing_artifacts_are_named(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="models/m/nothing-here"):
        store.get_dir("models/m/nothing-here")
    with pytest.raises(ArtifactError, match=r"drift/m/nothing\.json"):
        store.get_bytes("drift/m/nothing.json")


def test_delete_removes_a_blob_or_a_directory_and_says_whether_it_was_there(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes("drift/m/a.json", b"{}")
    store.put_dir("models/m/abc-v1", a_directory(tmp_path, "d", {"f": b"x", "g": b"y"}))
    store.get_dir("models/m/abc-v1")  # a remote store has it cached now
    assert store.delete("drift/m/a.json") is True
    assert store.delete("models/m/abc-v1") is True
    assert store.delete("models/m/abc-v1") is False
    with pytest.raises(ArtifactError, match=r"drift/m/a\.json"):
        store.get_bytes("drift/m/a.json")
    with pytest.raises(ArtifactError, match="models/m/abc-v1"):
        store.get_dir("models/m/abc-v1")
    store.put_dir("models/m/abc-v1", a_directory(tmp_path, "again", {"h": b"z"}))
    assert [p.name for p in store.get_dir("models/m/abc-v1").iterdir()] == ["h"]


def test_size_counts_the_bytes_of_a_blob_or_a_directory_and_zero_when_missing(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes("drift/m/a.json", b"12345")
    assert store.size("drift/m/a.json") == 5
    store.put_dir("models/m/abc-v1", a_directory(tmp_path, "d", {"f": b"x" * 1000, "g": b"y" * 24}))
    measured = store.size("models/m/abc-v1")
    assert 1024 <= measured < 4096  # a remote store may count its own index beside the files
    store.delete("models/m/abc-v1")
    assert store.size("models/m/abc-v1") == 0
    assert store.size("never/written") == 0


def test_nested_directories_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = a_directory(tmp_path, "adapter", {"adapter_config.json": b"{}"})
    (source / "tokenizer").mkdir()
    (source / "tokenizer" / "vocab.txt").write_bytes(b"a b c")
    local = store.get_dir(store.put_dir("models/m/lora-v2", source))
    assert (local / "tokenizer" / "vocab.txt").read_bytes() == b"a b c"
    assert (local / "adapter_config.json").read_bytes() == b"{}"


# -- the local store and URLs -------------------------------------------------------------------


def test_local_store_reads_absolute_file_uris_of_rows_written_before_keys(tmp_path: Path) -> None:
    old_root = tmp_path / "old home" / "artifacts"
    (old_root / "snapshots" / "m").mkdir(parents=True)
    (old_root / "snapshots" / "m" / "h.jsonl.gz").write_bytes(b"old")
    store = LocalArtifactStore(tmp_path / "new")
    assert store.get_bytes(f"file://{old_root}/snapshots/m/h.jsonl.gz") == b"old"  # written unquoted


def test_other_object_stores_say_they_are_not_supported_yet() -> None:
    with pytest.raises(ValidationError, match=r"gs:// stores are not supported yet \(issue: fleet\)") as caught:
        open_store("gs://bucket/learnloop")
    assert caught.value.field == "artifact_url"


def test_an_s3_url_without_the_s3_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # what Python does when s3fs is not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'learnloop\[s3\]'") as caught:
        open_store("s3://bucket/learnloop")
    assert caught.value.extra == "s3"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/dir", "unknown scheme 'ftp'; supported: file://, s3://"),
        ("s3:///no-bucket", "not an S3 URL: write s3://bucket/prefix"),
        ("s3://bucket/a?x=1", "not an S3 URL"),
        ("/srv/artifacts", "has no scheme: write file:///srv/artifacts"),
        ("artifacts", "has no scheme, like file:///absolute/path"),
        ("file://relative/dir", "not an absolute file URL"),
        ("file:relative", "not an absolute file URL"),
    ],
)
def test_bad_artifact_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        open_store(url)


def test_the_default_artifact_url_is_the_homes_artifacts_directory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "my home")
    assert settings.resolved_artifact_url == (tmp_path / "my home" / "artifacts").resolve().as_uri()
    store = open_store(settings.resolved_artifact_url)
    store.put_bytes("k", b"v")
    assert (tmp_path / "my home" / "artifacts" / "k").read_bytes() == b"v"


def test_the_artifact_url_comes_from_the_environment_or_an_override(tmp_path: Path) -> None:
    env = {"LEARNLOOP_HOME": str(tmp_path), "LEARNLOOP_ARTIFACT_URL": "file:///srv/shared"}
    assert Settings.from_env(env).resolved_artifact_url == "file:///srv/shared"
    assert Settings.from_env(env, artifact_url="file:///elsewhere").resolved_artifact_url == "file:///elsewhere"
    assert Settings.from_env({"LEARNLOOP_HOME": str(tmp_path)}).resolved_artifact_url.endswith("/artifacts")
