"""`pairrm label`'s Parquet output read by pandas, pyarrow and `datasets`, and the Ray Data
path (`pairrm.ray`) on a local two-worker cluster giving the CLI's records bit for bit."""

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, model_dir

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (scripts/test.sh installs it)")
pq = pytest.importorskip("pyarrow.parquet")

FIXTURE = REPO / "tests" / "fixtures" / "label" / "ultrafeedback.parquet"
COLUMNS = ["prompt", "chosen", "rejected", "score_chosen", "score_rejected", "margin", "chosen_index",
           "rejected_index", "row", "id"]


def cli_label(cli: str, out: Path, *args: str) -> None:
    cmd = [cli, "label", "--model", model_dir("tiny-original"), "--input", str(FIXTURE), "--output", str(out),
           "--no-progress", *args]
    subprocess.run(cmd, check=True, capture_output=True)


def test_parquet_output_reads_in_pandas_pyarrow_and_datasets(cli: str, tmp_path: Path) -> None:
    out = tmp_path / "dpo.parquet"
    cli_label(cli, out, "--strategy", "full")
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    assert table.schema.field("score_chosen").type == pa.float32()
    assert table.schema.field("prompt").type == pa.string()
    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(out)
    assert len(df) == table.num_rows > 0
    assert (df["margin"] > 0).all() and (df["chosen"] != df["rejected"]).all()
    assert df["id"].str.startswith("uf-").all()
    try:
        import datasets
    except ImportError:
        return
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert ds.column_names == COLUMNS
    assert ds.features["score_chosen"].dtype == "float32"
    assert ds[0]["prompt"] == df["prompt"][0]


def test_conversational_parquet_holds_turn_lists(cli: str, tmp_path: Path) -> None:
    out = tmp_path / "dpo.parquet"
    cli_label(cli, out, "--style", "conversational")
    rows = pq.read_table(out).to_pylist()
    assert rows[0]["chosen"][0]["role"] == "assistant"
    assert rows[0]["prompt"][0]["role"] == "user"


@pytest.mark.parametrize("strategy", ["full", "best-worst"])
def test_ray_labels_like_the_cli(cli: str, tmp_path: Path, strategy: str) -> None:
    ray = pytest.importorskip("ray", reason="ray not installed (scripts/test.sh installs ray[data])")
    import pairrm.ray

    out = tmp_path / "cli.parquet"
    cli_label(cli, out, "--strategy", strategy)
    expected = pq.read_table(out)

    # Two labelling actors (one CPU each) plus room for the read and numbering tasks: with only
    # two CPUs the actors would take both and the reads would wait forever.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.read_parquet(str(FIXTURE))
        records = pairrm.ray.label_dataset(ds, model_dir("tiny-original"), strategy=strategy, batch_size=5,
                                           concurrency=2, threads=1)
        got = pa.concat_tables(ray.get(records.to_arrow_refs()))
        written = tmp_path / "ray.parquet"
        count = pairrm.ray.label_parquet(str(FIXTURE), str(written), model_dir("tiny-original"), strategy=strategy,
                                         batch_size=7, concurrency=2, threads=1)
    finally:
        ray.shutdown()
    assert got.schema.equals(expected.schema)
    assert got.equals(expected), "Ray's records differ from the CLI's"
    assert count == expected.num_rows
    assert pq.read_table(written).equals(expected)
