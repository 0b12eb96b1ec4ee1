"""Step values can live on object storage through configuration alone: ``build_definitions``
takes a Pythonic IO manager such as dagster-aws's ``S3PickleIOManager`` pointed at an endpoint.

Against a real S3 server (SeaweedFS on 127.0.0.1, ``servers.object_store``).
"""

from __future__ import annotations

import dagster as dg
import dagster_pipelines as pipelines
import s3fs
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from servers.object_store import TEST_BUCKET, S3Server

from flowyml_dagster import build_definitions


def test_values_between_steps_go_through_an_s3_io_manager_given_in_code(
    s3_env: S3Server, s3_prefix: str, instance: dg.DagsterInstance
) -> None:
    prefix = s3_prefix.removeprefix(f"s3://{TEST_BUCKET}/")
    io_manager = S3PickleIOManager(
        s3_resource=S3Resource(endpoint_url=s3_env.endpoint_url),
        s3_bucket=TEST_BUCKET,
        s3_prefix=prefix,
    )
    defs = build_definitions(
        [pipelines.LINEAGE], io_manager=io_manager, executor=dg.in_process_executor
    )

    result = defs.resolve_job_def("lineage").execute_in_process(instance=instance)

    assert result.success
    stored = s3fs.S3FileSystem(skip_instance_cache=True).find(s3_prefix)
    assert sorted(path.removeprefix(f"{TEST_BUCKET}/{prefix}/") for path in stored) == [
        "data/test",
        "data/train",
        "evaluate",
        "model/fitted",
    ]
