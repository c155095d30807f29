"""The model zoo in models/: each entry is a folder with recipe.py (load_data, train, ...) and artifacts."""
from __future__ import annotations

import importlib.util
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def recipe(name: str):
    """Import models/<name>/recipe.py as a module."""
    path = MODELS_DIR / name / "recipe.py"
    if not path.exists():
        known = sorted(p.name for p in MODELS_DIR.iterdir() if (p / "recipe.py").exists())
        raise ValueError(f"no zoo model {name!r} (known: {', '.join(known)})")
    spec = importlib.util.spec_from_file_location(f"edgeloop_zoo_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
