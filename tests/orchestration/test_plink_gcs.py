"""PLINK 1 import and export streamed from and to gs:// (a real GCS emulator), and locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genosynth import storage
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.formats.plink import export_plink, import_plink


@pytest.fixture(scope="module")
def small_biobank(tmp_path_factory):
    from genosynth.datasets.biobank_sim import make_biobank_sim

    folder = tmp_path_factory.mktemp("bb")
    # 61 people: the last byte of every .bed record holds padding.
    dataset = make_biobank_sim(str(folder / "ds"), n_samples=61, n_snps=460, seed=5,
                               plink=str(folder / "plink" / "bb"))
    return dataset, folder / "plink" / "bb"


def _upload(prefix: Path, url: str) -> None:
    for ext in ("bed", "bim", "fam", "pheno"):
        storage.write_bytes(f"{url}.{ext}", Path(f"{prefix}.{ext}").read_bytes())


def test_plink_round_trip_through_gs(gcs_env, small_biobank):
    dataset, prefix = small_biobank
    fs, _ = storage.filesystem("gs://genosynth-plink/x")
    fs.mkdir("genosynth-plink")
    _upload(prefix, "gs://genosynth-plink/in/bb")
    imported = import_plink("gs://genosynth-plink/in/bb", "gs://genosynth-plink/ds",
                            pheno="gs://genosynth-plink/in/bb.pheno", chunk_size=128)
    assert (imported.n_samples, imported.n_variants) == (61, 460)
    np.testing.assert_array_equal(imported.dosages(), dataset.dosages())
    assert imported.samples["quant"].to_numpy() == pytest.approx(dataset.samples["quant"].to_numpy())
    assert list(imported.variants["cm"]) == pytest.approx(list(dataset.variants["cm"]))
    export_plink(Dataset.open("gs://genosynth-plink/ds"), "gs://genosynth-plink/out/bb", batch_size=100)
    # Written block by block, the exported .bed is byte for byte the simulator's.
    assert storage.read_bytes("gs://genosynth-plink/out/bb.bed") == Path(f"{prefix}.bed").read_bytes()
    assert storage.read_bytes("gs://genosynth-plink/out/bb.bim") == Path(f"{prefix}.bim").read_bytes()


def test_plink_import_locally_matches_bed_reader_and_refuses_set_padding(small_biobank, tmp_path):
    from bed_reader import open_bed

    dataset, prefix = small_biobank
    with open_bed(f"{prefix}.bed", count_A1=True) as reader:
        reference = reader.read(dtype="float32")
    np.testing.assert_array_equal(dataset.dosages(), reference)
    again = import_plink(str(prefix), str(tmp_path / "again"))
    np.testing.assert_array_equal(again.dosages(), reference)
    broken = tmp_path / "broken"
    for ext in ("bim", "fam"):
        (tmp_path / f"broken.{ext}").write_bytes(Path(f"{prefix}.{ext}").read_bytes())
    data = bytearray(Path(f"{prefix}.bed").read_bytes())
    data[3 + 300 * 16 + 15] |= 0b1100_0000  # SNP 301, padding bits of its last byte
    (tmp_path / "broken.bed").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"padding bits are set in 1 of \d+ SNPs \(SNPs 1 to "):
        import_plink(str(broken), str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
