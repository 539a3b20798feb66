"""notify_site.notify_content: the one set of Notify content rules, alone (no app, no HTTP)."""

from __future__ import annotations

import pytest

from notify_site.notify_content import (
    IMAGE_MAX_BYTES,
    Content,
    ContentError,
    ImageFile,
    Problem,
    check_content,
    read_image,
    read_notify_fields,
)
from notify_site.plain_text import text_problem
from tests import images


def problems(**kwargs) -> dict[str, Problem]:
    with pytest.raises(ContentError) as caught:
        check_content(**kwargs)
    return caught.value.problems


def codes(**kwargs) -> dict[str, str]:
    return {name: problem.code for name, problem in problems(**kwargs).items()}


def test_valid_content_comes_back_typed():
    content = check_content(
        "hello\r\n\tworld",
        sticker_package_id=446,
        sticker_id=1988,
        image_thumbnail_url="https://img.example/t.jpg",
        image_fullsize_url="https://img.example/f.jpg",
        notification_disabled=True,
    )
    assert content == Content(
        "hello\r\n\tworld", 446, 1988, "https://img.example/t.jpg", "https://img.example/f.jpg",
        None, True,
    )  # fmt: skip


def test_a_message_of_spaces_is_a_message():
    # LINE Notify wanted a message even with a lone sticker; " " was how people sent one.
    assert check_content(" ", sticker_package_id=1, sticker_id=2).message == " "


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (None, "required"),
        ("", "empty"),
        ("x" * 1001, "too_long"),
        ("nul\x00", "control_character"),
        ("bell\x07", "control_character"),
        ("escape\x1b[31m", "control_character"),
        ("lone \ud800", "invalid_unicode"),
    ],
)
def test_message_rules(message, code):
    assert codes(message=message) == {"message": code}


def test_every_problem_is_reported_at_once_in_field_order():
    found = problems(
        message="",
        sticker_id=5,
        image_thumbnail_url="https://a b/",
        image_fullsize_url="https://x/",
        notification_disabled="yes",
    )
    assert list(found) == [
        "message",
        "sticker_package_id",
        "image_thumbnail_url",
        "notification_disabled",
    ]
    assert found["sticker_package_id"] == Problem("pair", {"other": "sticker_id"})


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://img.example/a.jpg", "url_https"),
        ("https://", "url_host"),
        ("https://img.example/a b.jpg", "url_characters"),
        ("https://img.example/a\tb.jpg", "url_characters"),
        ("https://img.example/\u3000.jpg", "url_characters"),
        ("https://img.example/\x7f.jpg", "url_characters"),
        ("https://img.example:99999/a.jpg", "url_invalid"),
        ("https://[::1/a.jpg", "url_invalid"),
        ("https://img.example/" + "a" * 2000, "url_too_long"),
    ],
)
def test_image_url_rules(url, code):
    found = codes(message="m", image_thumbnail_url=url, image_fullsize_url="https://img.example/")
    assert found == {"image_thumbnail_url": code}


@pytest.mark.parametrize("value", [0, -1, 2**31, True])
def test_sticker_ids_are_positive_32_bit_integers(value):
    assert codes(message="m", sticker_package_id=value, sticker_id=1) == {
        "sticker_package_id": "positive_integer"
    }


def test_an_image_file_takes_the_place_of_the_urls():
    content = check_content(
        "m",
        image_thumbnail_url="https://img.example/t.jpg",
        image_fullsize_url="https://img.example/f.jpg",
        image_file=ImageFile("a.png", images.png(3, 4), "image/png"),
    )
    assert content.image_thumbnail_url is None
    assert content.image_fullsize_url is None
    assert (content.image_file.content_type, content.image_file.width) == ("image/png", 3)
    assert content.image_file.height == 4


@pytest.mark.parametrize(
    ("data", "declared", "code"),
    [
        (b"", "image/png", "file_empty"),
        (b"GIF89a" + b"\x00" * 20, "image/gif", "file_type"),
        (images.png(), "image/jpeg", "type_mismatch"),
        (images.jpeg(), "image/png", "type_mismatch"),
        (images.png()[:30], "image/png", "unreadable"),
        (b"\xff\xd8\xff" + b"\x00" * 50, "image/jpeg", "unreadable"),
        (images.png_header(2049, 1), "image/png", "dimensions"),
        (images.png_header(1, 2049), "image/png", "dimensions"),
        (images.png_header(30000, 30000), "image/png", "too_many_pixels"),
        (images.png() + b"\x00" * IMAGE_MAX_BYTES, "image/png", "file_too_large"),
    ],
)
def test_image_file_rules(data, declared, code):
    with pytest.raises(ContentError) as caught:
        read_image(ImageFile("f", data, declared))
    assert caught.value.problems["image_file"].code == code


@pytest.mark.parametrize(
    "declared", ["", "application/octet-stream", "image/jpg", "IMAGE/JPEG; charset=x"]
)
def test_a_generic_or_alias_declared_type_lets_the_bytes_decide(declared):
    assert read_image(ImageFile("f", images.jpeg(), declared)).content_type == "image/jpeg"


def test_the_largest_accepted_image_is_2048_square():
    image = read_image(ImageFile("f", images.png_header(2048, 2048), "image/png"))
    assert (image.width, image.height) == (2048, 2048)


def test_notify_wire_fields_are_read_by_lines_names():
    content = read_notify_fields(
        {
            "message": "hi",
            "stickerPackageId": "446",
            "stickerId": "1988",
            "notificationDisabled": "TRUE",
            "unknown": "ignored",
        }
    )
    assert (content.sticker_package_id, content.sticker_id) == (446, 1988)
    assert content.notification_disabled is True


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"message": "m", "stickerPackageId": "١", "stickerId": "1"}, "sticker_package_id"),
        ({"message": "m", "stickerPackageId": "+1", "stickerId": "1"}, "sticker_package_id"),
        ({"message": "m", "notificationDisabled": ""}, "notification_disabled"),
        ({"message": "m", "imageFile": "x"}, "image_file"),
    ],
)
def test_notify_wire_rules(fields, expected):
    with pytest.raises(ContentError) as caught:
        read_notify_fields(fields)
    assert list(caught.value.problems) == [expected]


def test_an_empty_unnamed_file_part_is_no_file():
    assert read_notify_fields({"message": "m"}, ImageFile("", b"")).image_file is None


def test_english_names_the_other_field_of_a_pair_by_the_callers_name():
    problem = Problem("pair", {"other": "sticker_id"})
    assert problem.english({"sticker_id": "stickerId"}) == "required together with stickerId"


@pytest.mark.parametrize(
    ("text", "multiline", "code"),
    [
        ("plain", False, None),
        ("tab\there", False, "control_character"),
        ("tab\there", True, None),
        ("line\r\nbreak", True, None),
        ("form\x0cfeed", True, "control_character"),
        ("\ud83d", True, "invalid_unicode"),
        ("日本語 ok 😀", False, None),
    ],
)
def test_plain_text_rule(text, multiline, code):
    problem = text_problem(text, multiline=multiline)
    assert (problem.code if problem else None) == code
