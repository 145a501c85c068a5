"""Genotype model families behind one interface (:class:`genosynth.models.base.GenotypeModel`).

A new family is one module with a subclass plus one line in ``_FAMILIES`` below.
"""

from __future__ import annotations

import json
import pkgutil

from genosynth import storage
from genosynth.errors import InputError
from genosynth.models.arrays import read_arrays
from genosynth.models.base import STATE_ARRAYS, STATE_META, GenotypeModel

# family name -> "module:Class"; imported lazily so listing families stays cheap.
_FAMILIES = {
    "mosaic": "genosynth.models.mosaic:MosaicModel",
    "autoregressive": "genosynth.models.autoregressive:AutoregressiveModel",
}

# ``model_options`` keys each family reads (its ``plan``/``fit``), plus those the pipeline itself reads:
# ``n_synthetic`` (base plan), ``context_snps`` (prep's batching) and ``phenotypes`` (assemble).
_COMMON_OPTIONS = frozenset({"n_synthetic", "context_snps", "phenotypes"})
_OPTIONS = {
    "mosaic": frozenset({"switch_rate", "switch_rate_scale", "max_ld_loss", "max_membership_auc",
                         "mutation_rate", "calibration_snps", "privacy_snps", "families", "donor_pools",
                         "pool_fraction", "pedigree_clans", "pedigree_generations", "pedigree_founders"}),
    "autoregressive": frozenset({"window", "epochs", "learning_rate", "weight_decay"}),
}


def option_keys(name: str) -> frozenset[str]:
    """The ``model_options`` keys that family ``name`` understands (checked before a run starts)."""
    return _COMMON_OPTIONS | _OPTIONS.get(name, frozenset())


def families() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> type[GenotypeModel]:
    """The model class registered under ``name``; an unknown name is an :class:`InputError`."""
    target = _FAMILIES.get(name)
    if target is None:
        raise InputError("config.json", f"unknown model {name!r}; expected one of {', '.join(families())}",
                         column="model")
    return pkgutil.resolve_name(target)


def load_model(url: str) -> GenotypeModel:
    """Load a model saved with :meth:`GenotypeModel.save`."""
    meta = json.loads(storage.read_text(storage.join(url, STATE_META)))
    family = get_family(meta.pop("family"))
    return family.from_state(meta, read_arrays(storage.join(url, STATE_ARRAYS)))
