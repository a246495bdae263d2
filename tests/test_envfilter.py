"""RUST_LOG directive subset: parsing, matching on module boundaries, most specific wins."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codex_login.diagnostics.envfilter import (
    DEFAULT_LOGIN_FILTER,
    OFF,
    TRACE,
    EnvFilter,
    from_env,
    parse_level,
)

DEBUG, INFO, WARN, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


def test_default_filter_is_the_reference_one() -> None:
    assert DEFAULT_LOGIN_FILTER == "codex_cli=info,codex_core=info,codex_login=info"
    f = from_env({})
    assert f.spec == DEFAULT_LOGIN_FILTER
    for target in ("codex_cli", "codex_cli::login", "codex_core::auth", "codex_login::server"):
        assert f.enabled(target, INFO)
        assert f.enabled(target, logging.CRITICAL)
        assert not f.enabled(target, DEBUG)
    for target in ("httpx", "httpcore.connection", "urllib3", "codex", "codex_login_extra", "root"):
        assert not f.enabled(target, ERROR)


@pytest.mark.parametrize("env", [{}, {"RUST_LOG": ""}, {"RUST_LOG": "   "}, {"RUST_LOG": ",,"}])
def test_unset_or_empty_rust_log_gives_the_default(env: dict[str, str]) -> None:
    assert EnvFilter.from_env(env).spec == DEFAULT_LOGIN_FILTER


def test_rust_log_with_only_invalid_directives_gives_the_default() -> None:
    f = EnvFilter.from_env({"RUST_LOG": "codex_login[span]=debug,foo=loud"})
    assert f.spec == DEFAULT_LOGIN_FILTER
    assert f.invalid == ("codex_login[span]=debug", "foo=loud")


def test_invalid_directives_are_ignored_and_reported() -> None:
    f = EnvFilter.parse("codex_login=debug, bad[x]=trace ,=info,a=b=c,{x}, codex_cli::login=verbose")
    assert f.spec == "codex_login=debug"
    assert f.invalid == ("bad[x]=trace", "=info", "a=b=c", "{x}", "codex_cli::login=verbose")
    assert f.enabled("codex_login::server", DEBUG)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("trace", 1),
        ("TRACE", 1),
        ("Debug", DEBUG),
        ("info", INFO),
        ("WARN", WARN),
        ("error", ERROR),
        ("off", OFF),
        ("OFF", OFF),
        ("5", 1),
        ("4", DEBUG),
        ("3", INFO),
        ("2", WARN),
        ("1", ERROR),
        ("0", OFF),
        ("warning", None),
        ("verbose", None),
        ("", None),
        ("6", None),
    ],
)
def test_levels(text: str, level: int | None) -> None:
    assert parse_level(text) == level


def test_bare_level_is_the_default_for_every_target() -> None:
    f = EnvFilter.parse("warn")
    assert f.enabled("anything::at::all", WARN)
    assert not f.enabled("anything", INFO)
    assert f.max_level_for("codex_login") == WARN


def test_bare_target_means_trace() -> None:
    f = EnvFilter.parse("codex_login::server")
    assert f.enabled("codex_login::server", TRACE)
    assert f.enabled("codex_login::server::inner", 1)
    assert not f.enabled("codex_login", ERROR)


def test_most_specific_target_wins_in_either_order() -> None:
    for spec in ("codex_login=error,codex_login::server=debug", "codex_login::server=debug,codex_login=error"):
        f = EnvFilter.parse(spec)
        assert f.enabled("codex_login::server", DEBUG)
        assert f.enabled("codex_login::server::x", DEBUG)
        assert not f.enabled("codex_login::oauth", WARN)
        assert f.enabled("codex_login::oauth", ERROR)


def test_specific_off_beats_global_trace() -> None:
    f = EnvFilter.parse("trace,codex_core=off")
    assert not f.enabled("codex_core::auth", logging.CRITICAL)
    assert f.enabled("codex_login", TRACE)


def test_later_directive_for_the_same_target_wins() -> None:
    assert EnvFilter.parse("codex_login=debug,codex_login=error").spec == "codex_login=error"
    assert not EnvFilter.parse("codex_login=debug,codex_login=error").enabled("codex_login", WARN)
    assert EnvFilter.parse("info,debug").spec == "debug"


def test_prefix_matches_only_on_module_boundaries() -> None:
    f = EnvFilter.parse("codex=trace,codex_login=warn")
    assert f.enabled("codex::x", DEBUG)
    assert not f.enabled("codex_login_extra", ERROR)
    assert not f.enabled("codexfoo", ERROR)
    assert f.enabled("codex_login::server", WARN)


def test_dot_spelling_is_the_same_target() -> None:
    f = EnvFilter.parse("codex_login.server=debug")
    assert f.spec == "codex_login::server=debug"
    assert f.enabled("codex_login::server", DEBUG)
    assert f.enabled("codex_login.server.x", DEBUG)


def test_case_insensitive_levels_in_directives() -> None:
    assert EnvFilter.parse("codex_login=DeBuG").enabled("codex_login", DEBUG)


def test_max_level_for() -> None:
    f = EnvFilter.parse("codex_login=warn,codex_login::server::deep=trace,codex_cli=off,error")
    assert f.max_level_for("codex_login") == 1
    assert f.max_level_for("codex_login::oauth") == WARN
    assert f.max_level_for("codex_cli") == OFF
    assert f.max_level_for("codex_core") == ERROR
    assert EnvFilter.parse("codex_login=info").max_level_for("codex_core") == OFF
    assert EnvFilter.parse("codex_login::server=debug").max_level_for("codex_login") == DEBUG


def test_max_level_for_is_never_notset() -> None:
    # logging treats level 0 as "inherit from the parent", which would undo a trace filter.
    assert EnvFilter.parse("trace").max_level_for("codex_login") >= 1


def test_is_a_logging_filter() -> None:
    f = EnvFilter.parse("codex_login=debug")
    assert isinstance(f, logging.Filter)
    record = logging.LogRecord("codex_login.server", DEBUG, __file__, 1, "m", (), None)
    assert f.filter(record)
    record = logging.LogRecord("httpx", ERROR, __file__, 1, "m", (), None)
    assert not f.filter(record)
    handler = logging.Handler()
    handler.addFilter(f)
    assert not handler.filter(record)


def test_repr_shows_the_normalized_spec() -> None:
    assert repr(EnvFilter.parse(" codex_login = debug , warn ")) == "EnvFilter('codex_login=debug,warn')"


TARGETS = st.lists(st.sampled_from(["codex_login", "server", "oauth", "codex_cli", "x"]), min_size=1, max_size=4).map(
    "::".join
)
LEVELS = st.sampled_from(["trace", "debug", "info", "warn", "error", "off"])
DIRECTIVES = st.lists(st.one_of(LEVELS, TARGETS, st.tuples(TARGETS, LEVELS).map("=".join)), max_size=6)


@given(directives=DIRECTIVES, target=TARGETS, low=st.integers(1, 60), high=st.integers(1, 60))
def test_enabled_is_monotonic_in_severity(directives: list[str], target: str, low: int, high: int) -> None:
    f = EnvFilter.parse(",".join(directives))
    low, high = min(low, high), max(low, high)
    if f.enabled(target, low):
        assert f.enabled(target, high)


@given(
    directives=DIRECTIVES,
    prefix=TARGETS,
    suffix=st.lists(st.sampled_from(["a", "server", "x"]), max_size=3),
    level=st.integers(1, 60),
)
def test_max_level_for_never_hides_an_enabled_event(
    directives: list[str], prefix: str, suffix: list[str], level: int
) -> None:
    f = EnvFilter.parse(",".join(directives))
    target = "::".join([prefix, *suffix])
    if f.enabled(target, level):
        assert level >= f.max_level_for(prefix)
