"""Model assembly: checksum, missing parts, corrupt files; nothing good is overwritten."""
import hashlib

import pytest

from assistant.errors import ModelError
from assistant.runtime import gguf


def test_assembly_is_verified_and_idempotent(test_model_path):
    spec = gguf.MODELS[gguf.TEST_MODEL]
    info = gguf.assemble(gguf.TEST_MODEL, test_model_path.parent)
    assert info.verified and info.sha256 == spec.sha256 and info.path.stat().st_size == spec.size
    mtime = info.path.stat().st_mtime_ns
    gguf.assemble(gguf.TEST_MODEL, test_model_path.parent)
    assert info.path.stat().st_mtime_ns == mtime, "second assembly must not rewrite the file"


def test_wrong_checksum_keeps_nothing_half_written(tmp_path, monkeypatch):
    bad = gguf.ModelSpec(**{**gguf.MODELS[gguf.TEST_MODEL].__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(gguf.MODELS, "bad", bad)
    with pytest.raises(ModelError) as e:
        gguf.assemble("bad", tmp_path)
    assert "Prüfsumme" in e.value.de and "--force-reinstall" in e.value.fix
    assert list(tmp_path.iterdir()) == []


def test_missing_parts_name_the_package(tmp_path, monkeypatch):
    spec = gguf.MODELS[gguf.TEST_MODEL]
    broken = gguf.ModelSpec(**{**spec.__dict__, "part_modules": spec.part_modules[:-1] + ("no_such_part_module",),
                                 "part_packages": spec.part_packages[:-1] + ("no-such-part",)})
    monkeypatch.setitem(gguf.MODELS, "broken", broken)
    with pytest.raises(ModelError) as e:
        gguf.assemble("broken", tmp_path)
    assert "no-such-part" in e.value.de and "pip install" in e.value.fix


def test_corrupt_gguf_is_refused(tmp_path):
    f = tmp_path / "kaputt.gguf"
    f.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(ModelError) as e:
        gguf.resolve(str(f), tmp_path)
    assert "keine GGUF" in e.value.de


def test_unknown_model_name(tmp_path):
    with pytest.raises(ModelError) as e:
        gguf.resolve("gpt-5", tmp_path)
    assert gguf.DEFAULT_MODEL in e.value.fix


def test_custom_gguf_path_gets_checksum(tmp_path, test_model_path):
    own = tmp_path / "own.gguf"
    with open(test_model_path, "rb") as src, open(own, "wb") as dst:
        dst.write(src.read(1 << 20))   # a GGUF header is enough for resolve()
    info = gguf.resolve(str(own), tmp_path)
    assert not info.known and info.sha256 == hashlib.sha256(own.read_bytes()).hexdigest()


def test_setup_into_read_only_dir_is_clear(tmp_path, bare_settings):
    import os

    from assistant.errors import StorageError
    from assistant.runtime.first_run import setup

    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    bare_settings.data_dir = ro / "data"
    with pytest.raises(StorageError):
        setup(bare_settings)
