"""Every public name in ``rl_repara.__all__`` has a docstring, and so does every public method,
property, classmethod and staticmethod its classes define themselves.

Public means: not starting with an underscore, and defined in rl_repara (a method inherited
unchanged from torch or Python is the parent's business; an override defined here needs its
own docstring). A dataclass without a docstring gets an automatic one, its signature
``Name(field: type = ..., ...)``; that does not count.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import rl_repara


def _own_doc(obj) -> str | None:
    """``obj.__doc__`` only if written by hand (not inherited, not a dataclass signature)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    auto = dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}(")
    if inspect.isclass(obj) and auto:
        return None
    return doc.strip() if doc and doc.strip() else None


def _callable_of(member):
    """The function behind a class attribute, or None for data attributes."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    if inspect.isfunction(member):
        return member
    return None


def _undocumented_members(cls: type) -> list[str]:
    missing = []
    for name, member in vars(cls).items():
        func = _callable_of(member)
        if name.startswith("_") or func is None:
            continue
        if not func.__module__.startswith("rl_repara"):
            continue
        if _own_doc(func) is None:
            missing.append(f"{cls.__name__}.{name}")
    return missing


@pytest.mark.parametrize("name", rl_repara.__all__)
def test_public_name_and_its_methods_have_docstrings(name):
    obj = getattr(rl_repara, name)
    missing = [] if _own_doc(obj) else [name]
    if inspect.isclass(obj):
        missing += _undocumented_members(obj)
    assert not missing, f"missing docstrings: {', '.join(missing)}"


def test_the_checker_sees_a_missing_docstring():
    """The check itself: a bare dataclass, an undocumented method and a documented one."""

    @dataclasses.dataclass
    class Bare:
        x: int = 0

        def method(self) -> None:
            pass

        def documented(self) -> None:
            """Yes."""

    Bare.method.__module__ = Bare.documented.__module__ = "rl_repara.fake"
    assert _own_doc(Bare) is None
    assert _undocumented_members(Bare) == ["Bare.method"]
