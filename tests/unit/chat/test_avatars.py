from ferry.chat.avatars import initials, initials_svg, picture_type


def test_initials_take_the_first_letters_of_up_to_two_words():
    assert initials("mary.jane") == "MJ"
    assert initials("Mary Jane Watson") == "MJ"
    assert initials("bob") == "B"
    assert initials("...") == "?"


def _colour(name: str) -> bytes:
    return initials_svg(name).split(b'<rect width="100%" height="100%" fill="')[1][:7]


def test_the_colour_follows_the_name():
    assert _colour("ann") == _colour("ann")
    assert len({_colour(chr(letter)) for letter in range(ord("a"), ord("z") + 1)}) > 3


def test_picture_types_are_read_from_the_first_bytes():
    assert picture_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert picture_type(b"GIF89a...") == "image/gif"
    assert picture_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert picture_type(b"plain") == "application/octet-stream"
