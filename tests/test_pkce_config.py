"""PKCE, state and configuration (reference-spec §4.1, §4.2, §15; DECISIONS §1)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login._settings import (
    STORE_MODES,
    codex_home_dir,
    issuer_problem,
    pathlib_form,
    resolve_settings,
    rust_debug_str,
    url_problem,
)
from codex_login.config import (
    CLIENT_ID,
    DEFAULT_ISSUER,
    StoreModeName,
    config_from_settings,
    find_codex_home,
    load_config,
    parse_override,
    validate_issuer,
)
from codex_login.errors import ConfigError
from codex_login.pkce import challenge_for, generate_pkce, generate_state


def test_pkce_known_answer_from_rfc7636_appendix_b() -> None:
    assert (
        challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_verifier_and_state_shapes_and_freshness() -> None:
    verifiers = {generate_pkce().code_verifier for _ in range(200)}
    states = {generate_state() for _ in range(200)}
    assert len(verifiers) == 200 and len(states) == 200
    for v in verifiers:
        assert re.fullmatch(r"[A-Za-z0-9\-_]{86}", v)
    for s in states:
        assert re.fullmatch(r"[A-Za-z0-9\-_]{43}", s)


def test_verifier_stays_out_of_repr() -> None:
    codes = generate_pkce()
    assert codes.code_verifier not in repr(codes)
    assert codes.code_challenge == challenge_for(codes.code_verifier)


def test_codex_home_errors_use_the_reference_texts(tmp_path: Path) -> None:
    """Reference §15: the value quoted as Rust's ``{val:?}``, an OS error as Rust's ``io::Error`` shows it."""
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as info:
        find_codex_home({"CODEX_HOME": str(missing)})
    assert str(info.value) == f'CODEX_HOME points to "{missing}", but that path does not exist'
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as info:
        find_codex_home({"CODEX_HOME": str(a_file)})
    assert str(info.value) == f'CODEX_HOME points to "{a_file}", but that path is not a directory'
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(ConfigError) as info:
        find_codex_home({"CODEX_HOME": str(loop)})
    assert str(info.value) == f'failed to read CODEX_HOME "{loop}": {os.strerror(errno.ELOOP)} (os error {errno.ELOOP})'
    assert find_codex_home({"CODEX_HOME": str(tmp_path)}) == tmp_path.resolve()
    assert find_codex_home({"HOME": "/home/someone"}) == Path("/home/someone/.codex")


def test_codex_home_canonicalize_error_is_rusts_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, *, strict: bool = False) -> str:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(os.path, "realpath", refuse)
    with pytest.raises(ConfigError) as info:
        codex_home_dir({"CODEX_HOME": f"{tmp_path}/"})
    expected = f'failed to canonicalize CODEX_HOME "{tmp_path}/": {os.strerror(errno.EACCES)} (os error {errno.EACCES})'
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("text", "debug"),
    [
        # What rustc 1.95's format!("{:?}", text) printed for each.
        ("/tmp/日本 \"x\" \\ y\t\n", r'"/tmp/日本 \"x\" \\ y\t\n"'),
        ("it's", '"it\'s"'),  # a single quote stays as it is in a str
        ("a\x1bb\x7f", r'"a\u{1b}b\u{7f}"'),
        ("\r\x00", r'"\r\0"'),
        ("\x85\xa0", r'"\u{85}\u{a0}"'),  # a C1 control, the no-break space
        ("e\u0301", r'"e\u{301}"'),  # a combining mark
        ("\u200b\u2028", r'"\u{200b}\u{2028}"'),  # a format character, the line separator
        ("caf\u00e9 \U0001f600", '"caf\u00e9 \U0001f600"'),
        ("", '""'),
    ],
)
def test_rust_debug_str_quotes_like_rust(text: str, debug: str) -> None:
    assert rust_debug_str(text) == debug


def test_codex_home_errors_quote_the_value_as_rust_debug() -> None:
    with pytest.raises(ConfigError) as info:
        codex_home_dir({"CODEX_HOME": '/nonexistent-codex-home/a "b"\\c\td\x1b\u0301'})
    expected = r'CODEX_HOME points to "/nonexistent-codex-home/a \"b\"\\c\td\u{1b}\u{301}", but that path does not exist'
    assert str(info.value) == expected


def test_overrides_parse_as_toml_else_literal() -> None:
    assert parse_override("a=1") == (["a"], 1)
    assert parse_override('a="x y"') == (["a"], "x y")
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=plain words") == (["a"], "plain words")
    assert parse_override("x.y=true") == (["x", "y"], True)
    with pytest.raises(ConfigError, match="missing '='"):
        parse_override("novalue")


def test_config_file_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'log_dir = "logs"\ncli_auth_credentials_store = "auto"\nforced_chatgpt_workspace_id = ["a", "b"]\n'
        "unknown_key = 5\n"
    )
    cfg = load_config([], env={"CODEX_HOME": str(tmp_path)}, cwd=tmp_path / "cwd")
    assert cfg.log_dir == tmp_path.resolve() / "logs"
    assert cfg.credentials_store is StoreModeName.AUTO
    assert cfg.forced_chatgpt_workspace_id == ("a", "b")
    assert cfg.issuer == DEFAULT_ISSUER and cfg.client_id == CLIENT_ID
    cfg2 = load_config(
        ["log_dir=./here", "forced_login_method=api", "login_log_format=json"],
        env={"CODEX_HOME": str(tmp_path)},
        cwd=tmp_path / "cwd",
    )
    assert cfg2.log_dir == tmp_path / "cwd" / "here"
    assert cfg2.forced_login_method == "api"
    assert cfg2.login_log_format == "json"
    default = load_config([], env={"CODEX_HOME": str(tmp_path / "cwd")}, codex_home=tmp_path)
    assert default.credentials_store is StoreModeName.AUTO


def test_an_integer_too_long_for_python_is_a_config_error_or_a_literal(tmp_path: Path) -> None:
    """int() refuses more than 4300 digits with a ValueError tomllib lets through: one clear error, no traceback."""
    digits = "9" * 5000
    (tmp_path / "config.toml").write_text(f"log_dir = \"x\"\nsome_number = {digits}\n")
    with pytest.raises(ConfigError, match=r"config\.toml: an integer has too many digits to be read"):
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    assert parse_override(f"a={digits}") == (["a"], digits)  # not TOML Python can read: taken as a string


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12", "0", "-1"])
def test_login_http_timeout_must_be_a_usable_number_of_seconds(tmp_path: Path, value: str) -> None:
    # nan and inf passed the old `<= 0` check and failed the sign-in after the browser step (ValueError in the
    # worker); 1e12 s is past what a socket accepts (time_t). Refused when the configuration is read.
    (tmp_path / "config.toml").write_text(f"login_http_timeout = {value}\n")
    with pytest.raises(ConfigError, match=r"login_http_timeout: expected a positive number of seconds, at most 86400"):
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    (tmp_path / "config.toml").write_text("login_http_timeout = 86400\n")
    assert load_config([], env={"CODEX_HOME": str(tmp_path)}).http_timeout == 86400.0


def test_a_bad_value_is_named_with_where_it_was_set(tmp_path: Path) -> None:
    """DECISIONS: a malformed file is a clear error naming the file and line; a value of the wrong type or an
    unknown value is one too (it named only the key: which of config.toml and ``-c`` set it was a guess)."""
    config = tmp_path / "config.toml"
    config.write_text("# codex\n\nlogin_http_timeout = 5\n'forced_login_method' = 3\n")
    env = {"CODEX_HOME": str(tmp_path)}
    with pytest.raises(ConfigError) as info:
        resolve_settings([], env=env)
    assert str(info.value) == f"{config}, line 4: forced_login_method: expected a string, got int"
    config.write_text('login_log_format = "xml"\n')
    with pytest.raises(ConfigError) as info:
        resolve_settings([], env=env)
    assert str(info.value) == f"{config}, line 1: login_log_format: unknown value 'xml' (expected text or json)"
    with pytest.raises(ConfigError) as info:  # -c wins over the file, and is named as the place
        resolve_settings(["login_log_format=yaml"], env=env)
    assert str(info.value) == "-c login_log_format: unknown value 'yaml' (expected text or json)"
    assert resolve_settings(["login_log_format=json"], env=env).login_log_format == "json"


def test_values_nested_past_the_parsers_depth_are_a_config_error_or_a_literal(tmp_path: Path) -> None:
    # tomllib recurses once per nesting level: RecursionError (not a TOMLDecodeError) was a traceback.
    deep = "[" * 50_000 + "]" * 50_000
    (tmp_path / "config.toml").write_text(f"a = {deep}\n")
    with pytest.raises(ConfigError, match=r"config\.toml: values are nested too deeply to be read"):
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    assert parse_override(f"a={deep}") == (["a"], deep)  # not TOML Python can read: taken as a string


def test_malformed_config_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('log_dir = "x"\nthis is not toml\n')
    with pytest.raises(ConfigError) as info:
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    assert "config.toml" in str(info.value) and "line 2" in str(info.value)


@pytest.mark.parametrize(
    ("text", "last_line"),
    [('log_dir = "x"\nissuer = [\n', 2), ('x = """never closed\r\n\r\nstill open', 3), ("a = {b = 1,", 1)],
)
def test_a_file_that_ends_too_soon_names_its_last_line(tmp_path: Path, text: str, last_line: int) -> None:
    """DECISIONS §1: a malformed file names the file and the line. tomllib names a line and column, except
    for a file that ends inside an array, a string or a table ("at end of document"): its last line then."""
    (tmp_path / "config.toml").write_bytes(text.encode())
    with pytest.raises(ConfigError) as info:
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    assert str(info.value).startswith(f"{tmp_path / 'config.toml'}: ")
    assert str(info.value).endswith(f"(at end of document, after line {last_line})")


def test_a_lone_carriage_return_in_config_is_the_malformed_file_error(tmp_path: Path) -> None:
    """TOML allows CR only before LF. Read with universal newlines, this file's CR became a line break, the
    comment ended there and the hidden setting took effect. TOML (and tomllib) refuse the file."""
    (tmp_path / "config.toml").write_bytes(b'# my settings\rcli_auth_credentials_store = "ephemeral"\n')
    with pytest.raises(ConfigError) as info:
        load_config([], env={"CODEX_HOME": str(tmp_path)})
    assert str(info.value).startswith(f"{tmp_path / 'config.toml'}: ")
    assert "line 1" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        'cli_auth_credentials_store = "keyring"\nlogin_http_timeout = 5\n',  # the plain subset
        'cli_auth_credentials_store = "keyring"\nlogin_http_timeout = 5.0\nx = """a\nb"""\n',  # tomllib
    ],
)
def test_crlf_config_reads_like_lf(tmp_path: Path, body: str) -> None:
    lf_home, crlf_home = tmp_path / "lf", tmp_path / "crlf"
    lf_home.mkdir()
    crlf_home.mkdir()
    (lf_home / "config.toml").write_bytes(body.encode())
    (crlf_home / "config.toml").write_bytes(body.replace("\n", "\r\n").encode())
    lf = resolve_settings(codex_home=str(lf_home))
    crlf = resolve_settings(codex_home=str(crlf_home))
    assert (crlf.credentials_store, crlf.http_timeout) == (lf.credentials_store, lf.http_timeout) == ("keyring", 5.0)


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("javascript:alert(1)", "https://"),
        ("file:///etc/passwd", "https://"),
        ("http://evil.example", "loopback"),
        ("https://user:CNRYpass@auth.example", "user name or password"),
        ("https://auth.example/?token=CNRYiq", "query"),
        ("https://auth.example/#frag", "query or a fragment"),
        ("https://auth.example/\x1b[31m", "control"),
        ("https://auth.example/\x9b31m", "control"),  # a C1 control: the 8-bit CSI of the line above
        ("https://[::1", "IPv6"),  # urlsplit raises ValueError: once a traceback in every command
        ("https://[CNRYv6", "IPv6"),
    ],
)
def test_bad_issuers_are_refused_without_echoing_them(issuer: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_issuer(issuer)
    assert problem in str(info.value)
    assert "CNRY" not in str(info.value)


def test_loopback_http_issuers_are_allowed() -> None:
    for issuer in (
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
        "https://auth.openai.com",
    ):
        assert validate_issuer(issuer) == issuer


# --------------------------------------------------------------------------------------------------------
# _settings: the configuration as plain strings (what ``codex-login status`` uses, without pathlib)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("/a.b "), max_size=12))
def test_pathlib_form_is_str_of_path(text: str) -> None:
    assert pathlib_form(text) == str(Path(text))


def test_the_default_issuer_passes_the_full_check() -> None:
    """``issuer_problem`` answers None for the default without parsing it; the full check agrees."""
    assert url_problem(DEFAULT_ISSUER, what="issuer") is None
    assert issuer_problem(DEFAULT_ISSUER) is None


@pytest.mark.parametrize("home", ["/home/someone", "/home/someone/", "//home//someone/./", "relative/home", "/"])
def test_codex_home_under_home_is_the_path_it_was(home: str) -> None:
    assert find_codex_home({"HOME": home}) == Path(home) / ".codex"
    assert codex_home_dir({"HOME": home}) == str(Path(home) / ".codex")


def test_codex_home_spellings_resolve_like_path_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    for value in ("real", "real/", "./real//", "link/.", str(tmp_path / "link") + "/"):
        assert codex_home_dir({"CODEX_HOME": value}) == str(Path(value).resolve(strict=True)), value
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match='"file/", but that path is not a directory'):
        codex_home_dir({"CODEX_HOME": "file/"})  # like Path("file/"), which is Path("file")


@pytest.mark.parametrize("log_dir", ["logs", "./a//b/", "/abs/logs", "~/logs", "", "."])
def test_log_dir_joins_like_path(tmp_path: Path, log_dir: str) -> None:
    import os

    (tmp_path / "config.toml").write_text(f"log_dir = {log_dir!r}\n".replace("'", '"'))
    cwd = tmp_path / "cwd"
    from_file = load_config([], env={"CODEX_HOME": str(tmp_path)}, cwd=cwd).log_dir
    from_override = load_config([f"log_dir={log_dir!r}"], env={"CODEX_HOME": str(tmp_path)}, cwd=cwd).log_dir
    raw = Path(os.path.expanduser(log_dir))
    assert from_file == (raw if raw.is_absolute() else tmp_path.resolve() / raw)
    assert from_override == (raw if raw.is_absolute() else cwd / raw)


def test_status_settings_are_the_configs_fields(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('cli_auth_credentials_store = "keyring"\nlogin_http_timeout = 5\n')
    settings_ = resolve_settings(["forced_login_method=api"], env={"CODEX_HOME": str(tmp_path)}, cwd=str(tmp_path))
    config = load_config(["forced_login_method=api"], env={"CODEX_HOME": str(tmp_path)}, cwd=tmp_path)
    assert config == config_from_settings(settings_)
    assert (settings_.codex_home, settings_.credentials_store) == (str(config.codex_home), "keyring")
    assert config.credentials_store is StoreModeName.KEYRING
    assert list(STORE_MODES) == [mode.value for mode in StoreModeName]
    with pytest.raises(ConfigError, match=r"cli_auth_credentials_store: unknown value 'vault' \(expected"):
        resolve_settings(["cli_auth_credentials_store=vault"], env={"CODEX_HOME": str(tmp_path)})
