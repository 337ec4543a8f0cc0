"""Typed schema of ``gnn_config.yaml`` (pydantic v2): types and bounds, no defaults.

The YAML is the one place where config defaults live; every field here is required, so a key
missing from the YAML (or a typo, an unknown key) is refused when the settings are built.
``holley_gnn_assets.config.settings`` builds these models; nothing here reads the environment.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictInt,
    field_serializer,
    model_validator,
)

from holley_gnn_assets.config.validation import (
    Cron,
    Identifier,
    K8sQuantity,
    NonEmpty,
    OutputTableName,
    Regex,
    Share,
    TimeZone,
)


class Section(BaseModel):
    """A config section: unknown keys refused, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeConfig(Section):
    as_of: dt.date | None
    test_window_days: PositiveInt
    test_window_step_days: PositiveInt
    max_test_window_days: PositiveInt
    interaction_start: dt.date
    purchase_exclusion_days: NonNegativeInt
    decay_half_life_days: PositiveFloat
    partition_start: dt.date
    partition_end_offset_days: NonNegativeInt
    keep_partitions: PositiveInt

    @model_validator(mode="after")
    def _window_max(self) -> TimeConfig:
        if self.max_test_window_days < self.test_window_days:
            raise ValueError(
                f"time.max_test_window_days={self.max_test_window_days} is below "
                f"time.test_window_days={self.test_window_days}: the test window only grows")
        return self


class EventWeights(Section):
    product_viewed: NonNegativeFloat
    added_to_cart: NonNegativeFloat
    order_placed: NonNegativeFloat
    email_click: NonNegativeFloat


class CoPurchase(Section):
    min_users: PositiveInt
    max_neighbours: NonNegativeInt
    neighbour_rule: Literal["either", "both"]
    rank_by: Literal["users", "strength"]
    min_strength: NonNegativeFloat
    weight_by_basket: bool


class RulesConfig(Section):
    min_price: NonNegativeFloat
    excluded_tags: list[str]
    service_part_types: list[str]
    commodity_part_types: list[str]
    image_prefix: str
    variant_suffix_regex: Regex
    max_per_part_type: PositiveInt
    top_k: PositiveInt
    rank_depth: PositiveInt
    candidate_depth: PositiveInt


class ModelConfig(Section):
    embedding_dim: PositiveInt
    hidden_dim: PositiveInt
    heads: PositiveInt
    layers: PositiveInt
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    part_type_dim: PositiveInt
    id_embeddings: bool
    logit_scale_init: PositiveFloat
    popularity_prior: bool
    product_bias: bool
    vehicle_attributes: bool
    attention_fitment: bool
    propagation: list[Literal["fitment", "owners", "history", "pooled", "neighbours"]]
    lookalike_lift_weights: list[NonNegativeFloat]
    lookalike_lift_neighbours: Annotated[list[PositiveInt], Field(min_length=1)]
    pooled_neighbours: PositiveInt


class Negatives(Section):
    in_batch: NonNegativeFloat
    uniform: NonNegativeFloat
    popularity: NonNegativeFloat
    fitment: NonNegativeFloat

    @model_validator(mode="after")
    def _some_share(self) -> Negatives:
        if self.in_batch + self.uniform + self.popularity + self.fitment <= 0:
            raise ValueError("the negative shares are all 0: give at least one a positive share")
        return self


class TrainingConfig(Section):
    epochs: PositiveInt
    patience: PositiveInt
    lr_embedding: PositiveFloat
    lr_gnn: PositiveFloat
    grad_clip: PositiveFloat
    batch_size: PositiveInt
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    validation_split: Literal["users", "edges"]
    seed: int
    negatives: Negatives
    negatives_per_positive: PositiveInt
    simulated_cold_share: Share
    warm_supervision_share: Share
    positive_weight: Literal["max_event_weight", "weight", "none"]
    loss: Literal["bce", "softmax"]
    fanout: Annotated[list[PositiveInt], Field(min_length=1)]
    max_steps_per_epoch: PositiveInt | None
    max_step_batch: PositiveInt | None
    supervision_per_user: PositiveInt | None
    weight_average_decay: Annotated[float, Field(ge=0.0, lt=1.0)] | None
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]
    reuse_freed_memory: bool
    deterministic: bool


class DecisionThresholds(Section):
    clear_win: float
    marginal: float
    worse: float


class RelativeThresholds(Section):
    """Decision bands as multiples of SQL's cold Hit Rate@4 (``evaluation.decision``)."""

    clear_win: float
    marginal: float
    worse: float
    neutral_ci_band: NonNegativeFloat


class EvalConfig(Section):
    bootstrap_samples: PositiveInt
    bootstrap_seed: int
    min_test_clicks: NonNegativeInt
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)]
    decision_thresholds: DecisionThresholds
    promotion_tolerance: NonNegativeFloat
    vehicle_pop_shrinkage: NonNegativeFloat
    neutral_ci_band: NonNegativeFloat
    relative_thresholds: RelativeThresholds
    band_rule: Literal["min", "absolute", "relative"]
    interval_method: Literal["stratified_t", "stratified_bootstrap", "cr2", "cluster_bootstrap",
                             "wild_cluster", "random_effects", "random_effects_max", "user"]
    min_effective_clusters: PositiveFloat


class RecentConfig(Section):
    """Recent demand (graph/recent_demand.py): the windows and half-lives chosen on the
    last ``holdout_days`` before the cutoff; 0 = every order before the cutoff, undecayed."""

    holdout_days: PositiveInt
    pop_days: Annotated[list[NonNegativeInt], Field(min_length=1)]
    prior_half_life_days: Annotated[list[NonNegativeFloat], Field(min_length=1)]
    train_on_decayed_prior: bool
    fallback_to_prior: bool


class QaConfig(Section):
    min_users_with_recs: NonNegativeInt
    min_share_with_recs: Share
    max_output_age_days: PositiveFloat


class OutputConfig(Section):
    dataset: Identifier
    table: OutputTableName
    staging_dataset: Identifier
    staging_expiration_hours: PositiveInt


class BigQueryConfig(Section):
    project: NonEmpty
    company_dataset: Identifier
    data_dataset: Identifier
    output_project: NonEmpty
    location: NonEmpty
    job_timeout_s: PositiveInt
    use_storage_api: bool


class WarehouseConfig(Section):
    kind: Literal["duckdb", "bigquery"]
    duckdb_memory_gb: PositiveFloat
    bigquery: BigQueryConfig


class Toleration(Section):
    """A Kubernetes toleration (``tolerationSeconds`` accepted as well)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")


class K8sConfig(Section):
    gpu_resource: NonEmpty
    gpu_count: Annotated[StrictInt, Field(gt=0)]
    node_selector: dict[str, str]
    tolerations: list[Toleration]
    train_cpu: K8sQuantity
    train_memory: K8sQuantity
    step_cpu: K8sQuantity
    step_memory: K8sQuantity

    @field_serializer("tolerations")
    def _tolerations(self, value: list[Toleration]) -> list[dict[str, Any]]:
        return [t.model_dump(exclude_none=True) for t in value]


class ScheduleConfig(Section):
    retrain_cron: Cron
    timezone: TimeZone
    score_min_interval_s: PositiveInt
    start_running: bool


class AlertsConfig(Section):
    webhook_tries: PositiveInt
    webhook_timeout_s: PositiveFloat
    webhook_backoff_s: NonNegativeFloat


class RetriesConfig(Section):
    warehouse_max_retries: NonNegativeInt
    training_max_retries: NonNegativeInt
    delay_s: NonNegativeFloat


class ComparisonConfig(Section):
    history_runs: PositiveInt


class RegressionConfig(Section):
    """Graph statistics compared with the last successful run's (``quality/graph_stats.py``)."""

    max_drop_share: Annotated[float, Field(gt=0.0, le=1.0)]
    warn_shift_share: Annotated[float, Field(gt=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _warn_below_drop(self) -> RegressionConfig:
        if self.warn_shift_share >= self.max_drop_share:
            raise ValueError(f"warn_shift_share ({self.warn_shift_share}) must be below "
                             f"max_drop_share ({self.max_drop_share})")
        return self


def _salt(value: str) -> str:
    if not value.strip():
        raise ValueError("the A/B salt is empty: set a non-empty string (a new salt reshuffles "
                         "every user's arm)")
    return value


class AbTestConfig(Section):
    """Phase 2 (spec section 7): the A/B assignment table and the power analysis' assumptions."""

    salt: Annotated[str, AfterValidator(_salt)]
    write_assignment: Literal["on_clear_win", "always", "never"]
    table: Identifier
    treatment_share: Annotated[float, Field(gt=0.0, lt=1.0)]
    weekly_sends_per_user: PositiveFloat
    base_click_rate: Annotated[float, Field(gt=0.0, lt=1.0)]
    power: Annotated[float, Field(gt=0.0, lt=1.0)]
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)]


class ScaleConfig(Section):
    user_candidates: PositiveInt
    memory_budget_gb: PositiveFloat
    bytes_per_row: PositiveInt


class PipelineConfig(Section):
    """The whole ``gnn_config.yaml``."""

    time: TimeConfig
    event_weights: EventWeights
    co_purchase: CoPurchase
    rules: RulesConfig
    scale: ScaleConfig
    model: ModelConfig
    training: TrainingConfig
    eval: EvalConfig
    recent: RecentConfig
    qa: QaConfig
    output: OutputConfig
    warehouse: WarehouseConfig
    k8s: K8sConfig
    retries: RetriesConfig
    schedule: ScheduleConfig
    alerts: AlertsConfig
    comparison: ComparisonConfig
    regression: RegressionConfig
    ab_test: AbTestConfig
