"""RUST_LOG directives as tracing-subscriber reads them: parsing, string-prefix matching, most specific wins,
and try_from_default_env's all-or-nothing fallback."""

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
    for target in ("httpx", "httpcore.connection", "urllib3", "codex", "root"):
        assert not f.enabled(target, ERROR)
    # A string prefix, as in tracing; such a logger is not under our root loggers, so it never reaches the file.
    assert f.enabled("codex_login_extra", INFO)


@pytest.mark.parametrize("env", [{}, {"RUST_LOG": ""}, {"RUST_LOG": "   "}, {"RUST_LOG": ",,"}])
def test_unset_or_empty_rust_log_gives_the_default(env: dict[str, str]) -> None:
    assert EnvFilter.from_env(env).spec == DEFAULT_LOGIN_FILTER


def test_rust_log_with_only_invalid_directives_gives_the_default() -> None:
    f = EnvFilter.from_env({"RUST_LOG": "foo=loud,bar[x=debug"})
    assert f.spec == DEFAULT_LOGIN_FILTER
    assert f.invalid == ("foo=loud", "bar[x=debug")


def test_one_invalid_directive_discards_the_whole_rust_log() -> None:
    # try_from_default_env fails on the first invalid directive and the reference then uses its default
    # filter: the valid codex_login=debug must not survive.
    f = EnvFilter.from_env({"RUST_LOG": "codex_login=debug,codex_login::server=verbose"})
    assert f.spec == DEFAULT_LOGIN_FILTER
    assert f.invalid == ("codex_login::server=verbose",)
    assert not f.enabled("codex_login::server", DEBUG)
    assert f.enabled("codex_login::server", INFO)


def test_parse_skips_invalid_directives_and_reports_them() -> None:
    f = EnvFilter.parse("codex_login=debug, bad[x=trace ,=info,a=b=c,{x}, codex_cli::login=verbose,a b=info")
    assert f.spec == "codex_login=debug"
    assert f.invalid == ("bad[x=trace", "=info", "a=b=c", "{x}", "codex_cli::login=verbose", "a b=info")
    assert f.enabled("codex_login::server", DEBUG)


def test_target_without_a_level_after_the_equals_sign_means_trace() -> None:
    # tracing-subscriber 0.3: "Setting the target without the level enables every level for that target";
    # the empty level never reaches LevelFilter::from_str (which would read "" as ERROR).
    f = EnvFilter.from_env({"RUST_LOG": "codex_login="})
    assert f.spec == "codex_login=trace"
    assert f.enabled("codex_login::server", TRACE)


def test_a_level_name_as_target_is_a_global_directive() -> None:
    f = EnvFilter.from_env({"RUST_LOG": "info=debug"})
    assert f.spec == "debug"
    assert f.enabled("anything", DEBUG)


def test_span_directive_is_valid_and_enables_events_in_the_attempt_span() -> None:
    for spec in ("codex_login[login]=debug", "[login]=debug", "codex[login{attempt}]=debug"):
        f = EnvFilter.from_env({"RUST_LOG": spec})
        assert f.invalid == (), spec
        assert f.spec == spec, spec
        assert f.enabled("codex_login::server", DEBUG, attempt="la_0123abcd"), spec
        assert f.enabled("codex_cli::login", DEBUG, attempt="la_0123abcd"), spec
        assert not f.enabled("codex_login::server", TRACE, attempt="la_0123abcd"), spec
        # Outside the span nothing matches, as in tracing (a span directive has no static part).
        assert not f.enabled("codex_login::server", ERROR), spec
        assert f.max_level_for("codex_login") == DEBUG, spec


def test_span_directive_for_another_span_field_or_target_matches_nothing() -> None:
    for spec in ("codex_login[other]=debug", "codex_login::server[login]=debug", "[login{user}]=debug"):
        f = EnvFilter.from_env({"RUST_LOG": spec})
        assert f.invalid == (), spec
        assert not f.enabled("codex_login::server", ERROR, attempt="la_0123abcd"), spec


def test_span_directive_with_an_attempt_value_matches_that_attempt_only() -> None:
    f = EnvFilter.from_env({"RUST_LOG": "codex_login=info,[login{attempt=la_0123abcd}]=trace"})
    assert f.enabled("codex_login::server", TRACE, attempt="la_0123abcd")
    assert not f.enabled("codex_login::server", DEBUG, attempt="la_ffffffff")
    assert f.enabled("codex_login::server", INFO, attempt="la_ffffffff")
    record = logging.LogRecord("codex_login.server", DEBUG, __file__, 1, "m", (), None)
    record.codex_attempt = "la_0123abcd"
    assert f.filter(record)


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


def test_targets_match_by_string_prefix_as_in_tracing() -> None:
    # tracing's Directive::cares_about is meta.target().starts_with(target): no module boundary needed.
    f = EnvFilter.from_env({"RUST_LOG": "codex=debug"})
    assert f.enabled("codex_login::server", DEBUG)
    assert f.enabled("codex_cli::login", DEBUG)
    assert not f.enabled("codex_login::server", TRACE)
    assert not f.enabled("httpx", ERROR)
    assert f.max_level_for("codex_login") == DEBUG


def test_longest_matching_prefix_wins() -> None:
    f = EnvFilter.parse("codex=trace,codex_login=warn,codex_login::ser=error")
    assert f.enabled("codex::x", DEBUG)
    assert f.enabled("codexfoo", DEBUG)
    assert not f.enabled("codex_login_extra", DEBUG)
    assert f.enabled("codex_login_extra", WARN)
    assert not f.enabled("codex_login::server", WARN)
    assert f.enabled("codex_login::oauth", WARN)
    assert f.max_level_for("codex_login") == WARN
    assert f.max_level_for("codex_login::server") == ERROR


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
