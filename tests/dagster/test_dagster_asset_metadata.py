"""What an asset tells about its step: code version, description, source reference, kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config

FITTED = dg.AssetKey(["model", "fitted"])


def asset_node(key: dg.AssetKey) -> dg.AssetSpec:
    (spec,) = (
        s
        for s in pipelines.definitions(pipelines.LINEAGE).resolve_all_asset_specs()
        if s.key == key
    )
    return spec


def test_the_code_version_of_an_asset_is_its_steps_code_fingerprint() -> None:
    versions = {
        key: asset_node(key).code_version
        for key in (FITTED, dg.AssetKey(["data", "train"]), dg.AssetKey(["evaluate"]))
    }

    assert versions[FITTED] is not None
    assert pipelines.fit.get_code_hash().startswith(versions[FITTED])
    assert len(versions[FITTED]) >= 16
    assert versions[dg.AssetKey(["data", "train"])] != versions[FITTED]
    assert pipelines.split_rows.get_code_hash().startswith(versions[dg.AssetKey(["data", "train"])])


def test_a_materialization_records_the_code_version_it_was_computed_with(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = execute(
        pipelines.lineage_job, instance, run_config(pipelines.lineage_job(), cache_dir=cache_dir)
    )

    assert run.succeeded
    assert run.materializations()[FITTED].tags["dagster/code_version"] == (
        asset_node(FITTED).code_version
    )


def test_the_description_of_an_asset_is_its_steps_docstring() -> None:
    assert asset_node(FITTED).description == "Fit the mean of the training rows."


def test_an_asset_references_the_source_file_and_line_of_its_step() -> None:
    references = asset_node(FITTED).metadata["dagster/code_references"]

    (reference,) = references.code_references
    assert isinstance(reference, dg.LocalFileCodeReference)
    assert Path(reference.file_path) == Path(pipelines.__file__)
    source_lines = Path(pipelines.__file__).read_text(encoding="utf-8").splitlines()
    assert reference.line_number is not None
    assert source_lines[reference.line_number - 1].startswith("@step(")
    assert source_lines[reference.line_number].startswith("def fit(")


def test_assets_of_steps_are_of_the_python_kind() -> None:
    assert asset_node(FITTED).kinds == {"python"}


SECRET_DEFAULT_STEP = """
import json, sys
from pydantic import SecretStr
from flowyml import step
from flowyml_dagster import FlowymlTranslator

@step(outputs=["o"], register=False)
def fetch(token: SecretStr = SecretStr(sys.argv[1])) -> int:
    return len(token.get_secret_value())

print(json.dumps(FlowymlTranslator().get_code_version(fetch)))
"""


def code_version_in_a_new_process(secret: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SECRET_DEFAULT_STEP, secret],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_code_version_of_a_step_with_a_secret_default_is_the_same_in_every_process() -> None:
    versions = {code_version_in_a_new_process("s3cr3t-token") for _ in range(2)}

    assert len(versions) == 1
    assert None not in versions


def test_the_code_version_tells_nothing_of_a_secret_default() -> None:
    assert code_version_in_a_new_process("s3cr3t-token") == code_version_in_a_new_process("other")
