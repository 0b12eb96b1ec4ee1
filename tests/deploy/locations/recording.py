"""``PidRecordingTranslator``: the pid of the process that ran each unit's body, on every
materialization, so a test can tell which process (a worker's, the launcher's) ran it."""

from __future__ import annotations

import os
from typing import Any

from flowyml import Step
from flowyml_dagster import FlowymlTranslator

PID_METADATA_KEY = "test/pid"


class PidRecordingTranslator(FlowymlTranslator):
    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        metadata = super().get_output_metadata(step, output_name, value)
        metadata[PID_METADATA_KEY] = os.getpid()
        return metadata
