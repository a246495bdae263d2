"""JSON for ``codex-login status`` without importing :mod:`json`.

``json`` imports ``re`` (for its whitespace pattern and the pure-Python scanner), which alone costs about half
of what starting the interpreter does; ``status`` has to read auth.json and two JWT payloads and must start
about as fast as the interpreter. So this module drives CPython's C accelerator ``_json`` directly, the same
scanner and string encoders ``json`` itself uses, and leaves everything else to ``json``:

* :func:`loads` returns exactly what ``json.loads(text, parse_constant=...)`` returns (same scanner, same
  settings). Anything the fast path does not accept as a whole (a syntax error, extra data, a rejected
  constant, a recursion limit, or ``_json`` missing) is handed to ``json.loads`` itself, which then returns
  the same value or raises its own exception: errors stay exactly ``json``'s and cost the import only then.
* :func:`dumps_flat` is ``json.dumps`` with the default separators for a flat object of strings, booleans
  and nulls (what ``status --json`` prints).
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import ModuleType

#: What ``json`` counts as whitespace around a document (``json.decoder.WHITESPACE``).
_WHITESPACE = " \t\n\r"


def _reject_constant(_name: str) -> object:
    raise ValueError("non-finite number")


class _ScannerSettings:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its defaults, with ``parse_constant``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self, parse_constant: "Callable[[str], object]") -> None:
        self.parse_constant = parse_constant


class _Accelerator:
    """``_json`` and a scanner made with it, loaded on first use: ``_json`` is a shared library in most
    builds, and loading it costs ``status`` about half a millisecond, which a signed-out ``status`` (no
    auth.json to read) need not pay. ``module`` stays None on a Python without ``_json``."""

    loaded = False
    module: "ModuleType | None" = None
    scan: "Callable[[str, int], tuple[object, int]] | None" = None

    @classmethod
    def load(cls) -> "type[_Accelerator]":
        if not cls.loaded:
            try:
                import _json
            except ImportError:  # another Python implementation: json's own pure-Python code does the work
                pass
            else:
                # typeshed types the argument as a scanner; _json reads only the six attributes above from it.
                cls.scan = _json.make_scanner(_ScannerSettings(_reject_constant))  # type: ignore[arg-type]
                cls.module = _json
            cls.loaded = True
        return cls


def loads(text: str) -> object:
    """``json.loads(text, parse_constant=...)`` where ``NaN``, ``Infinity`` and ``-Infinity`` raise
    ``ValueError("non-finite number")`` (serde_json rejects them)."""
    scan = _Accelerator.load().scan
    if scan is not None:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = scan(text, start)
        except Exception:  # json.loads below raises the exact error
            value, end = None, -1
        # A JSON value never ends in whitespace, so only whitespace follows it exactly when this holds.
        if end == len(text.rstrip(_WHITESPACE)):
            return value
    import json

    return json.loads(text, parse_constant=_reject_constant)


def has_surrogate(value: object) -> bool:
    """Whether a parsed JSON value holds a lone surrogate anywhere (a key or a string): Python's json accepts
    ``"\\ud800"``, serde_json (and UTF-8) refuse it, so a document that holds one is not JSON to the Rust CLI."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")  # fails exactly on surrogate code points
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def dumps_flat(obj: "Mapping[str, str | bool | None]") -> str:
    """``json.dumps(obj)`` for an object whose values are strings, booleans or None: ASCII only, so that no
    bidi control, C1 control or line separator from a claim reaches the terminal raw (security E5, D-5)."""
    accelerator = _Accelerator.load().module
    if accelerator is None:
        import json

        return json.dumps(obj)
    encode = accelerator.encode_basestring_ascii
    members = []
    for key, value in obj.items():
        if isinstance(value, str):
            text = encode(value)
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        elif value is None:
            text = "null"
        else:
            raise TypeError(f"dumps_flat takes strings, booleans and None, not {type(value).__name__}")
        members.append(f"{encode(key)}: {text}")
    return "{" + ", ".join(members) + "}"
