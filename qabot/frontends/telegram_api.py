"""Talking to the Bot API: the client, retries, long messages, "typing…".

``make_bot``    PTB's bot for the configured API URL, with timeouts and a token-free repr
``call_api``    one Bot API call, retried on network errors, timeouts and 429s (with backoff)
``send``        HTML in parts of at most 4096 characters; plain text when Telegram rejects it
``edit``        an answer's message replaced by a new text (the checked LLM answer)
``show_typing`` "typing…" for as long as a block runs

Anything that retrying cannot fix (a bad request, the last failed try) is raised to the
caller; the bot's error handler logs it and tells the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import ContextTypes, ExtBot
from telegram.request import HTTPXRequest

from qabot.frontends.telegram_format import plain_text, split_message

log = logging.getLogger(__name__)
R = TypeVar("R")

ATTEMPTS = 4  # per Bot API call: the first try and three retries
BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_RETRY_AFTER = 30.0  # a longer 429 wait is capped: the user would rather get an error
TYPING_EVERY = 4.5  # Telegram shows "typing…" for about 5 s


class QuietBot(ExtBot[None]):
    """PTB's bot, whose repr (and so the Application's) names the bot id, not the token."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}[id={self.token.split(':', 1)[0]}]"


def make_bot(token: str, api_url: str | None, *, timeout: float) -> QuietBot:
    """The bot for ``api_url`` (default: Telegram's); ``timeout`` bounds each call (a long
    poll gets its poll time on top)."""
    requests = {"connect_timeout": min(timeout, 5.0), "read_timeout": timeout, "write_timeout": timeout,
                "pool_timeout": timeout}
    base = (api_url or "https://api.telegram.org/bot").rstrip("/")
    return QuietBot(
        token, base_url=base,
        base_file_url=base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file",
        request=HTTPXRequest(connection_pool_size=64, **requests),  # answers to many chats at once
        get_updates_request=HTTPXRequest(connection_pool_size=1, **requests),  # PTB adds the poll time
    )


async def call_api(func: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
    """Await ``func(*args, **kwargs)``, retrying timeouts, network errors and 429s with backoff."""
    for attempt in range(ATTEMPTS):
        try:
            return await func(*args, **kwargs)
        except BadRequest:  # a NetworkError subclass, but retrying cannot fix the request
            raise
        except RetryAfter as exc:
            with warnings.catch_warnings():  # PTB 22 warns that retry_after will become a timedelta
                warnings.simplefilter("ignore")
                wait = exc.retry_after
            delay = min(wait.total_seconds() if isinstance(wait, timedelta) else float(wait), MAX_RETRY_AFTER)
            error: TelegramError = exc
        except NetworkError as exc:  # TimedOut included
            delay, error = BACKOFF * 2**attempt, exc
        if attempt == ATTEMPTS - 1:
            raise error
        log.warning("Bot API %s failed (%s); retry %d in %.1f s", getattr(func, "__name__", "call"), error, attempt + 1, delay)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def send(context: ContextTypes.DEFAULT_TYPE, chat_id: int, html: str, *,
               keyboard: InlineKeyboardMarkup | None = None, quote: Message | None = None) -> list[Message]:
    """Send ``html`` in parts of at most 4096 characters; plain text when Telegram rejects the HTML.

    Returns the messages sent, in order (an answer is later edited through them)."""
    sent: list[Message] = []
    parts = split_message(html)
    for index, part in enumerate(parts):
        options: dict[str, Any] = {
            "reply_markup": keyboard if index == len(parts) - 1 else None,
            "reply_parameters": ReplyParameters(quote.message_id, allow_sending_without_reply=True)
            if quote is not None and index == 0 else None,
            "link_preview_options": LinkPreviewOptions(is_disabled=True),
        }
        try:
            sent.append(await call_api(context.bot.send_message, chat_id, part, parse_mode=ParseMode.HTML, **options))
        except BadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                raise
            log.warning("Telegram rejected the HTML (%s); sending plain text", exc)
            sent.append(await call_api(context.bot.send_message, chat_id, plain_text(part), **options))
    return sent


async def edit(context: ContextTypes.DEFAULT_TYPE, message: Message, html: str, *,
               keyboard: InlineKeyboardMarkup | None = None) -> bool:
    """Replace ``message``'s text with ``html`` (one part only); False when it does not fit or
    Telegram refuses (the caller then sends it anew), never raising for a refused edit."""
    parts = split_message(html)
    if len(parts) != 1:
        return False
    options: dict[str, Any] = {"reply_markup": keyboard, "link_preview_options": LinkPreviewOptions(is_disabled=True)}
    try:
        await call_api(context.bot.edit_message_text, parts[0], chat_id=message.chat_id, message_id=message.message_id,
                       parse_mode=ParseMode.HTML, **options)
    except BadRequest as exc:
        log.warning("Telegram refused to edit the answer (%s)", exc)
        return False
    return True


@contextlib.asynccontextmanager
async def show_typing(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" until the block ends; a failed chat action never fails the answer."""

    async def keep_typing() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
