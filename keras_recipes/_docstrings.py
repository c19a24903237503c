"""Docstring text that several public callables share, written once.

A docstring names a shared block on a line of its own, `{{name}}` (the marker Keras fills in
its optimizers' docstrings with `base_optimizer_keyword_args`); `fill_docstring` puts the
block there, each of its lines indented as the marker is. `help()` and the API pages show
each callable's whole documentation, and the words are kept in one place.
"""

from __future__ import annotations

import textwrap

__all__ = ["fill_docstring"]


def fill_docstring(**blocks):
    """Returns a decorator that writes the shared `blocks` into a docstring.

    Args:
        **blocks: str, the text of each block, written as it reads in a docstring; its
            common indentation and the blank lines around it are left out
            (`textwrap.dedent`).

    Returns:
        A decorator that replaces each line `{{name}}` of the docstring of the function or
        class it decorates with `blocks[name]`, and returns that function or class.

    Raises:
        ValueError: when a block is named nowhere in the docstring (a marker renamed or
            removed on one side only).
    """
    blocks = {name: textwrap.dedent(text).strip("\n") for name, text in blocks.items()}

    def fill(obj):
        """Writes the blocks into the docstring of `obj` (a function or class); returns it."""
        if obj.__doc__ is None:  # docstrings stripped (python -OO)
            return obj
        lines, unused = [], set(blocks)
        for line in obj.__doc__.split("\n"):
            marker = line.strip()
            name = marker[2:-2] if marker.startswith("{{") and marker.endswith("}}") else None
            if name not in blocks:
                lines.append(line)
                continue
            unused.discard(name)
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + text if text else "" for text in blocks[name].split("\n")]
        if unused:
            raise ValueError(f"The docstring of {obj.__qualname__} has no line "
                             f"{', '.join('{{' + name + '}}' for name in sorted(unused))}.")
        obj.__doc__ = "\n".join(lines)
        return obj

    return fill
