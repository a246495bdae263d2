"""A value-object base: what ``@dataclass(frozen=True)`` generates, without importing ``dataclasses``.

``codex-login status`` must start about as fast as the interpreter, and ``dataclasses`` (with the ``inspect``
it pulls in) costs a large share of that budget; the library's records derive from this instead. (``status``
itself reads into the plain classes of ``_settings`` and ``_credentials`` and does not import this module.)
"""

from __future__ import annotations


class FrozenRecord:
    """Immutable, compared and hashed by value over ``_FIELDS``; ``_HIDDEN`` fields stay out of ``repr``."""

    _FIELDS: tuple[str, ...] = ()
    _HIDDEN: frozenset[str] = frozenset()

    def _assign(self, values: tuple[object, ...]) -> None:
        for name, value in zip(self._FIELDS, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, FrozenRecord)
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS if name not in self._HIDDEN)
        return f"{type(self).__qualname__}({shown})"
