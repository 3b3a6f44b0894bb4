"""WCAG contrast ratios, and the colours a stylesheet sets (custom properties, @media rules)."""

from __future__ import annotations

import re


def luminance(colour: str) -> float:
    """Relative luminance of `#rrggbb` (WCAG 2)."""
    value = colour.strip().lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The contrast ratio of two `#rrggbb` colours, 1 to 21."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb_hex(css_colour: str) -> str:
    """`rgb(11, 87, 197)` (what getComputedStyle gives) as `#0b57c5`."""
    numbers = re.findall(r"\d+", css_colour)[:3]
    return "#" + "".join(f"{int(n):02x}" for n in numbers)


def block(css: str, opening: str) -> str:
    """The text inside the braces that follow the first `opening` (nested braces kept)."""
    start = css.index("{", css.index(opening)) + 1
    depth = 1
    for index in range(start, len(css)):
        depth += {"{": 1, "}": -1}.get(css[index], 0)
        if depth == 0:
            return css[start:index]
    raise ValueError(f"unclosed {opening!r}")


def _uncommented(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.S)


def declarations(body: str) -> dict[str, str]:
    """{property: value} of `a: b; c: d` (without `!important`)."""
    found = {}
    for declaration in _uncommented(body).split(";"):
        name, _, value = declaration.partition(":")
        if value.strip():
            found[name.strip()] = value.replace("!important", "").strip()
    return found


def rules(css: str) -> dict[str, dict[str, str]]:
    """Selector -> {property: value} for the flat rules in `css` (no nesting), later rules win."""
    found: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", _uncommented(css)):
        for selector in selectors.split(","):
            found.setdefault(" ".join(selector.split()), {}).update(declarations(body))
    return found


def scheme_colours(stylesheet: str) -> tuple[dict[str, str], dict[str, str]]:
    """The site's colour variables (`--bg`, `--tone-0`, ...) in light and in dark mode."""
    light = declarations(block(stylesheet, ":root"))
    dark_root = block(block(stylesheet, "prefers-color-scheme: dark"), ":root")
    return light, {**light, **declarations(dark_root)}
