"""Text shown to people: values quoted in messages are cut to a readable length."""

from __future__ import annotations


def clip(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters, saying how much was left out (a value quoted from a
    file or an option can be megabytes long)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
