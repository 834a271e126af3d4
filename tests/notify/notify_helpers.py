"""Real local servers and fakes for the notification tests (imported by conftest and tests)."""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HttpSink:
    """Records every POST; `script[path]` lists (status, delay_s) answers, then 200s."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.path == path]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class SmtpSink:
    """A minimal SMTP server: EHLO, optional STARTTLS refusal, AUTH PLAIN, MAIL, RCPT, DATA."""

    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await reply("220 sink ready")
        sender, recipients = "", []
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            self.commands.append(verb)
            if verb == "EHLO":
                await reply("250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN")
            elif verb == "STARTTLS":
                await reply("454 TLS not available")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(line.split()[2]).decode().split("\0")
                self.logins.append((user, password))
                await reply("235 ok")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip("<> ")
                await reply("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip("<> "))
                await reply("250 ok")
            elif verb == "DATA":
                await reply("354 go on")
                data = (await reader.readuntil(b"\r\n.\r\n")).decode()
                self.mails.append(Mail(sender, recipients, data))
                await reply("250 queued")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("250 ok")
        writer.close()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingPubSub:
    """Collects published messages (the bus's in-process implementation is not needed)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def publish(self, channel: str, message: bytes) -> None:
        self.messages.append((channel, message))
