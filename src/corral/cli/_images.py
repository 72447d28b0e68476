"""Image files named in a prompt, for vision models, the way ``ollama run`` takes them:
a word that is the path of an existing .png/.jpg/.jpeg/.webp file (quoted, or with
backslash-escaped spaces, or followed by punctuation) is read, checked, base64-encoded
for the message's ``images``, and cut out of the text.
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

from corral.cli.main import CommandError

__all__ = ["MAX_SIZE", "extract_images", "image_words"]

MAX_SIZE = 100 * 1024 * 1024  # Ollama's limit
_WORD = re.compile(r"""'[^']+'|"[^"]+"|(?:\\.|\S)+""")
_PATH = re.compile(r"(?is)(.+?\.(?:png|jpe?g|webp))[?!,.;:)\]]*")
_ESCAPE = re.compile(r"\\(.)")


def image_words(text: str) -> list[tuple[int, int, Path]]:
    """``(start, end, path)`` of each word of ``text`` that names an existing image file."""
    found = []
    for word in _WORD.finditer(text):
        raw, start = word.group(), word.start()
        if len(raw) > 1 and raw[0] in "'\"" and raw[-1] == raw[0]:
            name, end = raw[1:-1], word.end()
        elif match := _PATH.fullmatch(raw):
            name, end = _ESCAPE.sub(r"\1", match.group(1)), start + match.end(1)
        else:
            continue
        if name.lower().endswith((".png", ".jpg", ".jpeg", ".webp")):
            path = Path(name).expanduser()
            if path.is_file():
                found.append((start, end, path))
    return found


def _encode(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_SIZE:
            raise CommandError(f"couldn't process image {path}: larger than 100 MB")
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"couldn't process image {path}: {exc.strerror}") from exc
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or webp):
        raise CommandError(f"couldn't process image {path}: not a PNG, JPEG or WebP image")
    return base64.b64encode(data).decode("ascii")


def extract_images(text: str) -> tuple[str, list[str]]:
    """The text without its image paths, and the images (base64), in prompt order.

    Prints ``Added image '<path>'`` to stderr for each, as Ollama does.
    """
    words = image_words(text)
    images = [_encode(path) for _, _, path in words]
    for start, end, _ in reversed(words):  # and the space before it, unless a word follows
        if start and text[start - 1] == " " and not text[end : end + 1].isalnum():
            start -= 1
        text = text[:start] + text[end:]
    for _, _, path in words:
        print(f"Added image '{path}'", file=sys.stderr)
    return text.strip(), images
