"""A person's own message template: Jinja2 in a sandbox, bounded in work and in output.

Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` keeps a template away from
Python's internals (``__class__``, ``__globals__``, unsafe callables) and from changing the
payload it reads. It does not bound how much work a template does: ``range`` is capped at
100,000 items, but two nested loops over it are 10¹⁰ steps, and ``"x" * 10**9`` is one step
that fills the memory. Here, on top of the sandbox:

* **Work**: a render runs under a trace function (:func:`sys.settrace`, for the rendering
  thread only) that counts every line and call of Python code the render runs, the
  template's own and the filters' alike, and stops the render with :class:`TemplateError`
  past :data:`MAX_STEPS`, or past :data:`MAX_SECONDS` (checked every :data:`CLOCK_EVERY`
  steps) whichever comes first. The count is what the tests rely on: the same template
  always stops at the same step.
* **Single steps that make huge values**: the operators ``*``, ``**``, ``+`` and ``%`` are
  intercepted and refuse a result longer than :data:`MAX_VALUE_CHARS` (or an integer longer
  than :data:`MAX_INT_BITS`); the filters that pad, repeat or join (``center``, ``indent``,
  ``replace``, ``join``, ``batch``, ``format``, ``tojson``) are wrapped the same way; the
  string methods that do the same (``ljust``, ``zfill``, ``format``, ``join``…) are not
  callable; ``lipsum`` is gone.
* **Output**: the render stops as soon as the text is longer than the message may be; the
  text is then cut to :data:`~notify_site.notify_content.MESSAGE_MAX_CHARS` with "…".

Missing fields render as nothing (:class:`~jinja2.ChainableUndefined`, also for
``a.b.c``), and ``None`` as an empty string: an alert without a summary should not fail.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext
from jinja2 import ChainableUndefined, TemplateSyntaxError, filters
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from notify_site.notify_content import MESSAGE_MAX_CHARS
from notify_site.services.webhooks.text import cut

TEMPLATE_MAX_CHARS = 10_000
MAX_STEPS = 1_000_000
MAX_SECONDS = 2.0
CLOCK_EVERY = 10_000
MAX_VALUE_CHARS = 20_000
MAX_INT_BITS = 4_096
# Widths and precisions of "%10s" and "{:>10}": more than a message holds is refused.
MAX_WIDTH = MESSAGE_MAX_CHARS
# str methods that pad, repeat or join: what they make is not bounded by what they read.
BLOCKED_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "join", "replace"}
)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateError(Exception):
    """The template cannot be used, or failed on a payload; the message is safe to show."""


class _Stop(BaseException):  # noqa: N818 - not an error of the template's: a signal
    """Raised from the trace function: the render did too much work.

    A ``BaseException``, so that no ``except Exception`` in a filter can swallow it (the
    trace function is gone once it has raised: a render that went on would go on unbounded).
    """


@dataclass(frozen=True)
class Rendered:
    """A template's output, cut to a message's length (``cut`` when it was longer)."""

    text: str
    cut: bool


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE_CHARS:
        raise SecurityError(
            f"a value of more than {MAX_VALUE_CHARS} characters or items is not allowed"
        )
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"a number of more than {MAX_INT_BITS} bits is not allowed")
    return value


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _check_percent_format(template: str) -> None:
    for match in _PERCENT_SPEC.finditer(template):
        for number in match.groups():
            if number == "*" or (number and int(number) > MAX_WIDTH):
                raise SecurityError(f"a width or precision over {MAX_WIDTH} is not allowed")


def _guard_int(value: Any, name: str, limit: int = MAX_WIDTH) -> None:
    if isinstance(value, int) and abs(value) > limit:
        raise SecurityError(f"{name} over {limit} is not allowed")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with the operators and methods that make huge values bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(count, int) and _length(sequence) * abs(count) > MAX_VALUE_CHARS:
                    raise SecurityError("a repeated value that long is not allowed")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and max(abs(left).bit_length(), 1) * right > MAX_INT_BITS
            ):
                raise SecurityError("a power that large is not allowed")
        elif operator == "+":
            if _length(left) + _length(right) > MAX_VALUE_CHARS:
                raise SecurityError("a value that long is not allowed")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return _sized(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any):
        # The sandbox would hand out a safe str.format, safe as to attributes but not as to
        # widths ("{:>999999999}"): not callable here at all. The format filter and ~ remain.
        if super().wrap_str_format(value) is not None:
            raise SecurityError("str.format is not allowed here: use ~ or the format filter")
        return None

    def unsafe_undefined(self, obj: Any, attribute: str):
        # The sandbox's own answer is an undefined value that renders as nothing: a template
        # reaching for Python's internals would save and print blanks. Refused at once.
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe"
        )

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in BLOCKED_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)


# ---------------------------------------------------------------------------- the filters


def _bounded_center(value: Any, width: int = 80) -> str:
    _guard_int(width, "center's width")
    return filters.do_center(value, width)


def _bounded_indent(value: str, width: int | str = 4, first: bool = False, blank=False) -> str:
    _guard_int(width, "indent's width", 100)
    if isinstance(width, str) and len(width) > 100:
        raise SecurityError("indent's text over 100 characters is not allowed")
    return _sized(filters.do_indent(value, width, first, blank))


def _bounded_replace(eval_ctx, value: str, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    times = text.count(str(old)) if old else len(text) + 1
    if count is not None:
        times = min(times, max(count, 0))
    if len(text) + times * max(len(str(new)) - len(str(old)), 0) > MAX_VALUE_CHARS:
        raise SecurityError("a replacement that long is not allowed")
    return filters.do_replace(eval_ctx, value, old, new, count)


def _bounded_join(eval_ctx, value: Iterable[Any], d: str = "", attribute=None) -> str:
    items = list(value)
    if len(items) > MAX_VALUE_CHARS or len(str(d)) * len(items) > MAX_VALUE_CHARS:
        raise SecurityError("a joined value that long is not allowed")
    return _sized(filters.do_join(eval_ctx, items, d, attribute))


def _bounded_batch(value: Iterable[Any], linecount: int, fill_with: Any = None):
    _guard_int(linecount, "batch's size", MAX_VALUE_CHARS)
    return filters.do_batch(value, linecount, fill_with)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_percent_format(str(value))
    return _sized(filters.do_format(value, *args, **kwargs))


def _bounded_tojson(eval_ctx, value: Any, indent: int | None = None):
    _guard_int(indent, "tojson's indent", 8)
    return _sized(str(filters.do_tojson(eval_ctx, value, indent)))


_FILTER_GUARDS: dict[str, Callable[..., Any]] = {
    "center": _bounded_center,
    "indent": _bounded_indent,
    "replace": filters.pass_eval_context(_bounded_replace),
    "join": filters.pass_eval_context(_bounded_join),
    "batch": _bounded_batch,
    "format": _bounded_format,
    "tojson": filters.pass_eval_context(_bounded_tojson),
}


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


@functools.cache
def environment() -> BoundedSandbox:
    """The one sandbox every template is compiled and rendered in (thread-safe to render)."""
    env = BoundedSandbox(
        undefined=ChainableUndefined,
        autoescape=False,
        finalize=_none_as_empty,
        # A tag alone on its line leaves no blank line behind: templates of text read as
        # they will print.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(_FILTER_GUARDS)
    env.globals.pop("lipsum", None)
    return env


# ---------------------------------------------------------------------------- compiling


@functools.lru_cache(maxsize=256)
def _compile(source: str):
    return environment().from_string(source)


def compile_template(source: str):
    """The compiled template, or :class:`TemplateError` naming the line of a syntax error."""
    if len(source) > TEMPLATE_MAX_CHARS:
        raise TemplateError(
            gettext("A template has at most %(max)s characters.", max=TEMPLATE_MAX_CHARS)
        )
    try:
        return _compile(source)
    except TemplateSyntaxError as error:
        raise TemplateError(
            gettext("Line %(line)s: %(error)s", line=error.lineno, error=error.message)
        ) from None
    except (JinjaTemplateError, RecursionError, MemoryError, ValueError) as error:
        raise TemplateError(str(error)) from None


# ---------------------------------------------------------------------------- rendering


class _Budget:
    """The trace function of one render: counts steps, looks at the clock now and then."""

    def __init__(self, max_steps: int, max_seconds: float) -> None:
        self.steps = 0
        self.max_steps = max_steps
        self.deadline = time.monotonic() + max_seconds

    def __call__(self, frame, event: str, arg: Any):
        self.steps += 1
        if self.steps > self.max_steps:
            raise _Stop
        if self.steps % CLOCK_EVERY == 0 and time.monotonic() > self.deadline:
            raise _Stop
        return self


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    max_steps: int = MAX_STEPS,
    max_seconds: float = MAX_SECONDS,
) -> Rendered:
    """Render ``source`` with ``context``, within the bounds of the module.

    Raises :class:`TemplateError` when the template cannot be compiled, fails (a type error,
    an attribute the sandbox refuses...), or does too much work.
    """
    template = compile_template(source)
    budget = _Budget(max_steps, max_seconds)
    parts: list[str] = []
    length = 0
    previous = sys.gettrace()
    sys.settrace(budget)
    try:
        for chunk in template.generate(dict(context)):
            parts.append(chunk)
            length += len(chunk)
            if length > MESSAGE_MAX_CHARS:
                break
    except _Stop:
        raise TemplateError(
            gettext(
                "The template did too much work and was stopped (a loop inside a loop?). "
                "A template may take %(steps)s steps.",
                steps=f"{max_steps:,}",
            )
        ) from None
    except SecurityError as error:
        raise TemplateError(gettext("Not allowed: %(error)s", error=str(error))) from None
    except RecursionError:
        raise TemplateError(gettext("The template calls itself without end.")) from None
    except Exception as error:  # any failure of the person's template is theirs to read
        raise TemplateError(_describe_failure(error)) from None
    finally:
        sys.settrace(previous)
    text = "".join(parts)
    return Rendered(cut(text, MESSAGE_MAX_CHARS), cut=len(text) > MESSAGE_MAX_CHARS)


def _describe_failure(error: Exception) -> str:
    line = _template_line(error)
    detail = f"{type(error).__name__}: {error}"
    if line is None:
        return detail
    return gettext("Line %(line)s: %(error)s", line=line, error=detail)


def _template_line(error: BaseException) -> int | None:
    """The template's line the error happened on, from the traceback Jinja rewrote."""
    traceback = error.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
