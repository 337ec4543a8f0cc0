"""Value types and validation helpers of the settings: identifiers, cron, time zones,
Kubernetes quantities, regexes, and the one-line-per-key error messages.

``config/schema.py`` builds the config sections from these; ``config/settings.py`` merges and
validates with them. Nothing here reads the environment.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError


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
Cron = Annotated[str, BeforeValidator(_cron)]
TimeZone = Annotated[str, BeforeValidator(_timezone)]
Regex = Annotated[str, AfterValidator(_regex)]
# table/dataset names go into SQL unquoted; the output table's leaves room for "_publish_log"
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
OutputTableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]


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
    if name not in cfg or not isinstance(cfg[name], Mapping):
        raise SettingsError(f"config section {name!r} is missing or not a mapping")
    return typed(cfg[name], model, name)


def typed(value: M | Mapping[str, Any], model: type[M], *where: str) -> M:
    """``value`` as the typed config (section) ``model``: as is when it already is one, else
    validated. A missing, unknown or bad key raises :class:`SettingsError` naming it (e.g.
    ``model.pooled_neighbours: missing``), so a partial config never runs with other values."""
    if isinstance(value, model):
        return value
    name = ".".join(where) or "config"
    if not isinstance(value, Mapping):
        raise SettingsError(f"{name}: expected a {model.__name__} or a mapping of its keys, "
                            f"got {type(value).__name__}")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise SettingsError(f"invalid {name}: " + "; ".join(describe_errors(exc, where))) from None
