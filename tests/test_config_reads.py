"""One source of config defaults: the package reads config values as required keys.

``gnn_config.yaml`` holds every default and ``config/schema.py`` none; library code must not
add a second default when it reads the config. The AST walk below fails on

- ``.get(key, ...)`` whose receiver is a config object: a name like ``cfg``, ``config``,
  ``settings``, ``*_cfg``, ``*_config``, a parameter typed with a schema section
  (``ModelConfig``, ...), a name assigned from one of those in the same function
  (``tr = cfg["training"]``), an attribute ``x.cfg`` / ``x.config``, ``get_settings()`` /
  ``load_config()``, or a subscript or attribute of any of these (``cfg["eval"]``);
- ``<config read> or <fallback>`` on such a value, and ``cfg[k] if k in cfg else <fallback>``;
- ``.get("<key of gnn_config.yaml>", default)`` or ``.get("<key>") or ...`` on any dict: a
  config value copied into another dict and read back with a default of its own.

A partial config handed to library code is a named error, never a different model.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import holley_gnn_assets
from holley_gnn_assets.config import schema as settings_schema
from holley_gnn_assets.config.settings import DEFAULT_CONFIG_PATH, flatten, load_config

PACKAGE_DIR = Path(holley_gnn_assets.__file__).resolve().parent
CONFIG_NAME = re.compile(r"^(cfg|config|settings|conf|cfg_\w+|\w+_cfg|\w+_config)$")
CONFIG_ATTR = re.compile(r"^(cfg|config|\w+_cfg)$")
CONFIG_CALLS = {"get_settings", "load_config", "load_settings"}
SCHEMA_TYPES = {name for name, obj in vars(settings_schema).items()
                if isinstance(obj, type) and issubclass(obj, BaseModel)
                and obj.__module__ == settings_schema.__name__}


def yaml_keys(path: Path = DEFAULT_CONFIG_PATH) -> set[str]:
    """The value keys of the config file (``model.dropout`` -> ``dropout``; not the sections,
    which overrides merge with ``.get(section, {})``)."""
    with open(path) as fh:
        flat = flatten(yaml.safe_load(fh))
    return {key.rsplit(".", 1)[-1] for key in flat}


class _Scope(ast.NodeVisitor):
    """Walks one function (or a module's top level) tracking names that hold config."""

    def __init__(self, path: str, keys: set[str], tainted: set[str]) -> None:
        self.path, self.keys, self.tainted = path, keys, set(tainted)
        self.found: list[tuple[int, str]] = []

    def is_config(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.tainted or bool(CONFIG_NAME.match(node.id))
        if isinstance(node, ast.Attribute):
            return bool(CONFIG_ATTR.match(node.attr)) or self.is_config(node.value)
        if isinstance(node, ast.Subscript):
            return self.is_config(node.value)
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else None
            return name in CONFIG_CALLS or (name == "get" and self.is_get_on_config(node))
        return False

    def is_config_value(self, node: ast.AST) -> bool:
        """A value read from the config (``cfg["x"]``, ``settings.config.x``, ``tr`` from
        ``tr = cfg["training"]``), not the config object or the Settings' runtime fields."""
        if isinstance(node, ast.Name):
            return node.id in self.tainted
        if isinstance(node, ast.Attribute) and (
                CONFIG_ATTR.match(node.attr)  # the config object itself (x.cfg)
                or isinstance(node.value, ast.Name) and node.value.id == "settings"):  # runtime
            return False
        if isinstance(node, ast.Attribute | ast.Subscript):
            return self.is_config(node.value)
        return isinstance(node, ast.Call) and self.is_get_on_config(node)

    def is_get_on_config(self, node: ast.Call) -> bool:
        f = node.func
        return (isinstance(f, ast.Attribute) and f.attr == "get" and bool(node.args)
                and self.is_config(f.value))

    def _key(self, node: ast.Call) -> str | None:
        f, args = node.func, node.args
        if (isinstance(f, ast.Attribute) and f.attr == "get" and args
                and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
            return args[0].value
        return None

    # -- scopes --------------------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        inner = _Scope(self.path, self.keys, self.tainted)
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            ann = ast.unparse(arg.annotation) if getattr(arg, "annotation", None) else ""
            if set(re.findall(r"\w+", ann)) & SCHEMA_TYPES:
                inner.tainted.add(arg.arg)
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            inner.visit(stmt)
        self.found += inner.found

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    # -- taint ---------------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        if self.is_config(node.value):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.tainted.add(target.id)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if node.value is not None and self.is_config(node.value) \
                and isinstance(node.target, ast.Name):
            self.tainted.add(node.target.id)

    # -- findings ------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if self.is_get_on_config(node):
            self.found.append((node.lineno, f".get on config: {ast.unparse(node)}"))
        elif self._key(node) in self.keys and len(node.args) > 1:
            self.found.append((node.lineno, f".get of a config key with a default: "
                                            f"{ast.unparse(node)}"))

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.generic_visit(node)
        test = node.test
        if (isinstance(test, ast.Compare) and isinstance(test.ops[0], ast.In | ast.NotIn)
                and self.is_config(test.comparators[0])):
            self.found.append((node.lineno, f"'in' fallback on config: {ast.unparse(node)}"))

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Or):
            return
        for value in node.values[:-1]:
            copied_key = isinstance(value, ast.Call) and self._key(value) in self.keys
            if self.is_config_value(value) or copied_key:
                self.found.append((node.lineno, f"'or' fallback on config: {ast.unparse(node)}"))
                return


def config_reads_with_defaults(root: Path = PACKAGE_DIR) -> list[str]:
    """``path:line: what`` for every config read with a default of its own under ``root``."""
    keys = yaml_keys()
    out = set()
    for path in sorted(root.rglob("*.py")):
        scope = _Scope(str(path.relative_to(root.parent)), keys, set())
        scope.visit(ast.parse(path.read_text(), str(path)))
        out |= {f"{scope.path}:{line}: {what}" for line, what in scope.found}
    return sorted(out)


def _lines(found: list[str]) -> Iterator[str]:
    yield f"{len(found)} config read(s) with a default outside gnn_config.yaml:"
    yield from found


def test_no_config_read_has_a_default_of_its_own() -> None:
    found = config_reads_with_defaults()
    assert not found, "\n".join(_lines(found))


def test_the_walk_finds_each_kind_of_fallback(tmp_path: Path) -> None:
    """The checker itself: each pattern it must refuse is found, plain reads are not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "from holley_gnn_assets.config.schema import ModelConfig\n"
        "def a(cfg):\n"
        "    return cfg.get('x', 1)\n"                               # 3
        "def b(cfg):\n"
        "    tr = cfg['training']\n"
        "    return tr.get('loss', 'bce')\n"                         # 6
        "def c(pipeline):\n"
        "    return pipeline.cfg['eval'].get('alpha')\n"             # 8
        "def d(m: ModelConfig):\n"
        "    return m.get('dropout')\n"                              # 10
        "def e(cfg):\n"
        "    return int(cfg['model']['pooled_neighbours'] or 20)\n"  # 12
        "def f(report):\n"
        "    return report.get('interval_method', 'user')\n"         # 14
        "def h(cfg):\n"
        "    return cfg['k'] if 'k' in cfg else 3\n"                 # 16
        "def g(rows, cfg, warehouse):\n"
        "    return rows.get('n'), cfg['eval']['alpha'], warehouse.get()\n")
    found = config_reads_with_defaults(pkg)
    assert sorted(int(f.split(":")[1]) for f in found) == [3, 6, 8, 10, 12, 14, 16], found


def test_schema_has_no_defaults_outside_kubernetes_tolerations() -> None:
    """Every config key is required (the YAML holds its one default); only the optional
    fields of a Kubernetes toleration may be left out."""
    with_default = [f"{name}.{field}" for name in sorted(SCHEMA_TYPES)
                    for field, info in getattr(settings_schema, name).model_fields.items()
                    if not info.is_required() and name != "Toleration"]
    assert with_default == []


def test_a_config_file_missing_a_model_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    from holley_gnn_assets.config.settings import load_settings
    from holley_gnn_assets.config.validation import SettingsError

    with open(DEFAULT_CONFIG_PATH) as fh:
        raw = yaml.safe_load(fh)
    del raw["model"]["pooled_neighbours"]
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match=r"model\.pooled_neighbours: missing") as err:
        load_settings(env={}, config_path=path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("key", ["pooled_neighbours", "propagation", "attention_fitment"])
def test_a_partial_model_section_is_a_named_error(key: str) -> None:
    """A model section missing one key builds no model: the error names the key."""
    from holley_gnn_assets.config.validation import SettingsError
    from holley_gnn_assets.model.hetero_gat import GraphMeta, HeteroGAT

    with open(DEFAULT_CONFIG_PATH) as fh:
        model_cfg = yaml.safe_load(fh)["model"]
    assert key in model_cfg
    partial = {k: v for k, v in model_cfg.items() if k != key}
    meta = GraphMeta(num_products=3, num_vehicles=2, num_part_types=1)
    HeteroGAT(meta, model_cfg)  # the full section builds
    with pytest.raises(SettingsError, match=rf"model\.{key}: missing"):
        HeteroGAT(meta, partial)


def test_a_partial_config_is_refused_by_training_and_evaluation(tmp_path: Path) -> None:
    """train(), TrainingSetup (through train) and evaluate() validate a mapping first."""
    import pandas as pd

    from holley_gnn_assets.config.validation import SettingsError
    from holley_gnn_assets.evaluation.report import evaluate
    from holley_gnn_assets.training.loop import train

    cfg = load_config()
    no_loss = copy.deepcopy(cfg)
    del no_loss["training"]["loss"]
    with pytest.raises(SettingsError, match=r"training\.loss: missing"):
        train(None, no_loss, tmp_path)  # type: ignore[arg-type]  # refused before the graph
    no_alpha = copy.deepcopy(cfg)
    del no_alpha["eval"]["alpha"]
    empty = pd.DataFrame(columns=["email_lower", "sku", "rank"])
    users = pd.DataFrame(columns=["email_lower", "vehicle_id", "tier"])
    with pytest.raises(SettingsError, match=r"eval\.alpha: missing"):
        evaluate({"gnn": empty, "sql": empty}, users, empty[["email_lower", "sku"]], None,
                 no_alpha)
