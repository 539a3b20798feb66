"""A person's own template: Jinja2's sandbox, bounded in work and in output.

Jinja2 caps ``range`` at 100,000 items, but two nested loops under the cap are 10¹⁰ steps:
the tests below show the cap alone does not stop them, and the step budget does.
"""

from __future__ import annotations

import sys

import pytest
from jinja2.sandbox import MAX_RANGE

from notify_site.notify_content import MESSAGE_MAX_CHARS
from notify_site.services.webhooks import templates
from notify_site.services.webhooks.templates import TemplateError, render

NESTED = (
    "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% if i == -1 %}never{% endif %}{% endfor %}{% endfor %}done"
)


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context():
        yield


def test_range_alone_is_capped_but_nested_loops_under_the_cap_are_stopped_by_the_budget():
    assert MAX_RANGE == 100_000
    with pytest.raises(TemplateError, match="Range too big"):
        render("{% for i in range(10**9) %}{{ i }}{% endfor %}", {})
    # Each loop is within the cap; together they are 10¹⁰ steps. The budget stops them, and
    # always at the same step: a smaller budget stops them as surely.
    for budget in (templates.MAX_STEPS, 10_000):
        with pytest.raises(TemplateError, match="did too much work"):
            render(NESTED, {}, max_steps=budget)
    # The same loops with a bound the template sets itself finish.
    assert render(NESTED.replace("100000", "30"), {}).text == "done"


def test_the_step_budget_counts_the_filters_work_too():
    with pytest.raises(TemplateError, match="did too much work"):
        render("{{ range(100000)|map('string')|join(',') }}", {})
    recursive = "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"
    with pytest.raises(TemplateError, match="calls itself"):
        render(recursive, {})


def test_endless_output_is_stopped_at_a_message_and_cut():
    rendered = render(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", {}
    )
    assert rendered.cut
    assert len(rendered.text) == MESSAGE_MAX_CHARS
    assert rendered.text == "x" * (MESSAGE_MAX_CHARS - 1) + "…"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "Hello {{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{{ payload.__class__.__base__ }}",
        "{{ '{0.__class__}'.format(payload) }}",
        "{{ 'x'.format_map(payload) }}",
        "{{ range.__globals__ }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{% set x = payload.update({'a': 1}) %}",  # the payload cannot be changed either
        "{{ alerts.append(1) }}",
    ],
)
def test_python_internals_and_changes_are_refused(source):
    with pytest.raises(TemplateError, match="Not allowed"):
        render(source, {"payload": {"a": 1}, "alerts": []})


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ [1, 2, 3] * 100000 }}",
        "{{ 10 ** 100000 }}",
        "{{ '%999999999d'|format(1) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ '%*d' % (10**9, 1) }}",
        "{{ 'a'|center(10**9) }}",
        "{{ 'a'|indent(10**9) }}",
        "{{ [1]|batch(10**9, 0)|list }}",
        "{{ range(100000)|join('x' * 1000) }}",
        "{{ 'ab'|replace('', 'y' * 10000) }}",
        "{{ payload|tojson(indent=10**6) }}",
        "{{ 'a'.ljust(10**9) }}",
        "{{ 'a'.zfill(10**9) }}",
        "{{ (range(50000)|list) + (range(50000)|list) }}",
    ],
)
def test_one_step_that_would_make_a_huge_value_is_refused(source):
    with pytest.raises(TemplateError, match="Not allowed"):
        render(source, {"payload": {"a": 1}})


def test_lipsum_is_gone():
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        render("{{ lipsum(10**6) }}", {})


def test_missing_fields_and_none_render_as_nothing():
    rendered = render(
        "[{{ payload.a.b.c }}|{{ nothing }}|{{ none }}|{{ payload.x }}]",
        {"payload": {"x": 1}, "none": None},
    )
    assert rendered.text == "[|||1]"


def test_errors_name_the_line():
    with pytest.raises(TemplateError, match=r"^Line 2: ZeroDivisionError: division by zero$"):
        render("ok\n{{ 1 / 0 }}", {})
    with pytest.raises(TemplateError, match=r"^Line 1: Unexpected end of template"):
        render("{% for x in y %}", {})


def test_a_render_leaves_the_threads_trace_function_as_it_was():
    def keep(frame, event, arg):
        return None

    sys.settrace(keep)
    try:
        render("{{ 1 }}", {})
        with pytest.raises(TemplateError):
            render(NESTED, {})
        assert sys.gettrace() is keep
    finally:
        sys.settrace(None)


def test_blocks_alone_on_a_line_leave_no_blank_line():
    source = "Alerts:\n{% for a in alerts %}\n- {{ a }}\n{% endfor %}\nend"
    assert render(source, {"alerts": ["x", "y"]}).text == "Alerts:\n- x\n- y\nend"
