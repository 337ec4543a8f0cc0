"""Typed schema of ``gnn_config.yaml`` (pydantic v2): types and bounds, no defaults.

The YAML is the one place where config defaults live; every field here is required, so a key
missing from the YAML (or a typo, an unknown key) is refused when the settings are built.
``holley_gnn_assets.settings`` builds these models; nothing here reads the environment.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictInt,
    ValidationError,
    field_serializer,
    model_validator,
)


class SettingsError(ValueError):
    """Invalid settings; the message names every bad variable or config key."""


M = TypeVar("M", bound=BaseModel)
Share = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmpty = Annotated[str, Field(min_length=1)]


CRON_HINT = "not a valid 5-field cron expression (minute hour day-of-month month day-of-week, " \
    "e.g. '0 3 * * 1')"


def _cron(value: Any) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    text = str(value).strip()
    if not is_valid_cron_string(text):
        raise ValueError(CRON_HINT)
    return text


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone (e.g. 'UTC', 'America/Chicago')") from None
    return str(value)


def validate_cron(cron: str, setting: str) -> str:
    """Return ``cron`` stripped, or raise ValueError naming the setting and the bad value."""
    try:
        return _cron(cron)
    except ValueError as exc:
        raise ValueError(f"{setting}={cron!r}: {exc}") from None


def validate_timezone(name: str, setting: str) -> str:
    """Return the IANA time zone name, or raise ValueError naming the setting."""
    try:
        return _timezone(name)
    except ValueError as exc:
        raise ValueError(f"{setting}={name!r}: {exc}") from None


def _k8s_quantity(value: Any) -> str:
    from kubernetes.utils import parse_quantity

    text = str(value).strip()
    try:
        if not text or parse_quantity(text) <= 0:
            raise ValueError
    except ValueError:
        raise ValueError("not a positive Kubernetes quantity (e.g. '8', '500m', '32Gi')") from None
    return text


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return value


K8sQuantity = Annotated[str, BeforeValidator(_k8s_quantity)]
Regex = Annotated[str, AfterValidator(_regex)]


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
    weight_average_decay: Annotated[float, Field(ge=0.0, lt=1.0)] | None
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]
    reuse_freed_memory: bool
    deterministic: bool


class DecisionThresholds(Section):
    clear_win: float
    marginal: float
    worse: float


class EvalConfig(Section):
    bootstrap_samples: PositiveInt
    bootstrap_seed: int
    min_test_clicks: NonNegativeInt
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)]
    decision_thresholds: DecisionThresholds
    promotion_tolerance: NonNegativeFloat
    vehicle_pop_shrinkage: NonNegativeFloat
    neutral_ci_band: NonNegativeFloat


class QaConfig(Section):
    min_users_with_recs: NonNegativeInt
    min_share_with_recs: Share
    max_output_age_days: PositiveFloat


class OutputConfig(Section):
    dataset: NonEmpty
    table: NonEmpty
    staging_dataset: NonEmpty


class BigQueryConfig(Section):
    project: NonEmpty
    company_dataset: NonEmpty
    data_dataset: NonEmpty
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
    retrain_cron: Annotated[str, BeforeValidator(_cron)]
    timezone: Annotated[str, BeforeValidator(_timezone)]
    score_min_interval_s: PositiveInt


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
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
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


# -- merging and error messages (used by settings.load_settings) ----------------------------


def merge_sections(base: dict, extra: dict, model: type[BaseModel] | None) -> dict:
    """``extra`` merged into ``base``: config sections recursively, values (lists, mappings
    such as ``k8s.node_selector``) replaced whole."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        field = model.model_fields.get(key) if model is not None else None
        sub = field.annotation if field is not None else None
        is_section = isinstance(sub, type) and issubclass(sub, BaseModel)
        if is_section and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_sections(out[key], value, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_errors(exc: ValidationError, prefix: tuple[str, ...] = (),
              sources: Mapping[tuple[str, ...], str] | None = None,
              env: Mapping[str, str] | None = None) -> list[str]:
    """One line per error: the key (or the variable that set it), the value, the reason."""
    lines = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        where = dotted(loc)
        msg = err["msg"].removeprefix("Value error, ")
        var = next((v for k, v in (sources or {}).items() if tuple(loc[: len(k)]) == k), None)
        if err["type"] == "missing":
            lines.append(f"{where}: missing")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        elif var is not None and env is not None:
            lines.append(f"{var}={env[var]!r} ({where}): {msg}")
        elif isinstance(err.get("input"), dict):
            lines.append(f"{where}: {msg}")
        else:
            lines.append(f"{where}={err.get('input')!r}: {msg}"[:300])
    return lines


def validate_section(cfg: Mapping[str, Any], name: str, model: type[M]) -> M:
    """Validate one section of a config dict (``cfg[name]``) with ``model``; errors name keys."""
    if not isinstance(cfg.get(name), Mapping):
        raise SettingsError(f"config section {name!r} is missing or not a mapping")
    try:
        return model.model_validate(cfg[name])
    except ValidationError as exc:
        raise SettingsError("; ".join(describe_errors(exc, (name,)))) from None
