"""The Dagster code location: ``defs``, built from ``defs/`` and the one settings object.

Deployment mode comes from the settings (README, "Configuration", lists every variable):
the executor (``defs/executor.py``), the IO manager (``defs/io_managers.py``) and the
resources (``defs/resources.py``) all come from ``settings.get_settings()``.
"""

from __future__ import annotations

from dagster import DefaultSensorStatus, Definitions

from holley_gnn_assets.config.settings import Settings, get_settings
from holley_gnn_assets.defs import (
    alert_sensors,
    checks,
    freshness,
    publish_runs,
    schedules,
    sources,
)
from holley_gnn_assets.defs.assets import (
    ab_test,
    champion,
    evaluation,
    exports,
    model,
    output,
    recommendations,
    run_window,
)
from holley_gnn_assets.defs.executor import executor_from_settings
from holley_gnn_assets.defs.jobs import full_retrain_job, publish_job, score_job
from holley_gnn_assets.defs.resources import pipeline_resources


def build_defs(settings: Settings | None = None) -> Definitions:
    """Assemble the code location from ``settings`` (default: the current environment's)."""
    settings = settings or get_settings()
    max_age = settings.config.qa.max_output_age_days
    outputs = [freshness.with_freshness_policy(a, max_age) if a.key == freshness.OUTPUT else a
               for a in output.output_assets]
    return Definitions(
        assets=[sources.warehouse_sources, run_window.run_window, *exports.export_assets,
                *model.model_assets, *recommendations.recommendation_assets, evaluation.eval_report,
                champion.champion_decision, *outputs, *ab_test.ab_test_assets],
        asset_checks=[*recommendations.qa_checks, *checks.regression_checks,
                      freshness.build_freshness_check(max_age)],
        jobs=[full_retrain_job, score_job, publish_job, sources.observe_sources_job],
        schedules=schedules.all_schedules(settings),
        sensors=[*schedules.all_sensors(settings), *alert_sensors.all_sensors(settings),
                 publish_runs.build_publish_sensor(DefaultSensorStatus.RUNNING),
                 freshness.build_freshness_sensor(max_age, DefaultSensorStatus.RUNNING)],
        resources=pipeline_resources(settings),
        executor=executor_from_settings(settings),
    )


defs = build_defs()
__all__ = ["defs", "build_defs"]
