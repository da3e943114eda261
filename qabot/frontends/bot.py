"""The Telegram bot: thin async handlers around the Retriever, wired in :func:`build_application`.

A question travels: update -> access check -> length check -> rate limit -> follow-up
expansion -> ``Retriever.ask`` in a worker thread (never on the event loop) -> HTML reply
(qabot/telegram_format.py) with "Sources"/"More" buttons whose results wait server-side
under short ids (qabot/access.py). Bot API calls are retried on network errors, timeouts
and 429s; anything else reaches the error handler, which logs it and tells the user.

The index folder is watched: when ``manifest.json`` changes (a rebuild), the Retriever is
reopened before the next question; the old one is closed once no question uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from qabot.frontends.access import AccessPolicy, RateLimiter, ResultStore, protect_logs
from qabot.config import Settings
from qabot.documents import Answer, Passage
from qabot.errors import ConfigError, QabotError, QuestionError
from qabot.frontends.reloading import RetrieverHolder
from qabot.answering.retriever import Retriever
from qabot.frontends.telegram_format import (
    addressed_question,
    detect_language,
    expand_followup,
    plain_text,
    render_answer,
    render_passages,
    split_message,
    t,
    welcome,
)

log = logging.getLogger(__name__)
R = TypeVar("R")

ATTEMPTS = 4  # per Bot API call: the first try and three retries
BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_RETRY_AFTER = 30.0  # a longer 429 wait is capped: the user would rather get an error
FOLLOWUP_SECONDS = 900.0  # a follow-up leans on a previous question at most this old
TYPING_EVERY = 4.5  # Telegram shows "typing…" for about 5 s
POLL_TIMEOUT = 30  # seconds a getUpdates long poll waits for news


class QuietBot(ExtBot[None]):
    """PTB's bot, whose repr (and so the Application's) names the bot id, not the token."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}[id={self.token.split(':', 1)[0]}]"


@dataclass(frozen=True)
class Shown:
    """What a reply showed, kept under a short id for its buttons."""

    question: str
    lang: str
    answer: Answer
    passages: tuple[Passage, ...]  # the ones in this message, numbered from ``first``
    first: int
    shown: int  # passages shown so far for this question


@dataclass
class BotState:
    """What the handlers share (kept in ``application.bot_data["qabot"]``)."""

    settings: Settings
    retrievers: RetrieverHolder
    access: AccessPolicy
    limiter: RateLimiter
    results: ResultStore[Shown]


def _state(context: ContextTypes.DEFAULT_TYPE) -> BotState:
    return context.bot_data["qabot"]


# -- Bot API calls: retries, splitting, plain-text fallback --------------------------------------


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
               keyboard: InlineKeyboardMarkup | None = None, quote: Message | None = None) -> None:
    """Send ``html`` in parts of at most 4096 characters; plain text when Telegram rejects the HTML."""
    parts = split_message(html)
    for index, part in enumerate(parts):
        options: dict[str, Any] = {
            "reply_markup": keyboard if index == len(parts) - 1 else None,
            "reply_parameters": ReplyParameters(quote.message_id, allow_sending_without_reply=True)
            if quote is not None and index == 0 else None,
            "link_preview_options": LinkPreviewOptions(is_disabled=True),
        }
        try:
            await call_api(context.bot.send_message, chat_id, part, parse_mode=ParseMode.HTML, **options)
        except BadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                raise
            log.warning("Telegram rejected the HTML (%s); sending plain text", exc)
            await call_api(context.bot.send_message, chat_id, plain_text(part), **options)


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


# -- the handlers -----------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the archive holds and how to ask, in the user's language."""
    user, chat = update.effective_user, update.effective_chat
    lang = detect_language(user.language_code if user else None)
    if chat is None or not await _admitted(update, context, lang):
        return
    async with _state(context).retrievers.use() as retriever:
        stats = await asyncio.to_thread(retriever.stats)
    await send(context, chat.id, welcome(lang, stats, username=context.bot.username))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message: a question in private chats; in groups only when it mentions or answers the bot."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    replied = message.reply_to_message
    question = addressed_question(
        message.text, bot_username=context.bot.username or "", private=message.chat.type == ChatType.PRIVATE,
        reply_to_bot=bool(replied and replied.from_user and replied.from_user.id == context.bot.id),
    )
    if question is not None:
        await _answer(update, context, question)


async def on_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask QUESTION: the way to ask in a group without mentioning the bot."""
    text = update.effective_message.text if update.effective_message else None
    words = (text or "").split(maxsplit=1)  # "/ask@bot question", also after a line break
    await _answer(update, context, words[1].strip() if len(words) > 1 else "")


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The "Sources" and "More" buttons under an answer."""
    query, state = update.callback_query, _state(context)
    if query is None or update.effective_chat is None:
        return
    action, _, key = (query.data or "").partition(":")
    shown = state.results.get(key)
    lang = shown.lang if shown else detect_language(query.from_user.language_code)
    if not state.access.allows(query.from_user.id, update.effective_chat.id):
        await call_api(query.answer, t(lang, "refused", user_id=query.from_user.id), show_alert=True)
    elif shown is None:
        await call_api(query.answer, t(lang, "expired"), show_alert=True)
    else:
        await call_api(query.answer)
        await (_more(update, context, shown) if action == "more" else _sources(update, context, shown))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure with its traceback, tell the user kindly; the bot keeps running."""
    log.error("an update could not be handled", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        user = update.effective_user
        lang = detect_language(user.language_code if user else None)
        with contextlib.suppress(TelegramError):
            await call_api(context.bot.send_message, update.effective_chat.id, t(lang, "error"))


# -- what the handlers share ------------------------------------------------------------------


async def _admitted(update: Update, context: ContextTypes.DEFAULT_TYPE, lang: str) -> bool:
    """True when the sender may ask; else they are told their id (for the operator) and nothing runs."""
    user, chat = update.effective_user, update.effective_chat
    if _state(context).access.allows(user.id if user else None, chat.id if chat else None):
        return True
    log.info("refused user %s in chat %s", user.id if user else None, chat.id if chat else None)
    if chat is not None and user is not None:
        await send(context, chat.id, t(lang, "refused", user_id=user.id))
    return False


async def _answer(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    """Check, limit, expand a follow-up, retrieve in a worker thread, reply with buttons."""
    state, user, chat, message = _state(context), update.effective_user, update.effective_chat, update.effective_message
    if user is None or chat is None:
        return
    lang = detect_language(user.language_code, question)
    if not await _admitted(update, context, lang):
        return
    quote = message if chat.type != ChatType.PRIVATE else None
    if state.settings.log_messages:
        log.info("question from user %s in chat %s: %r", user.id, chat.id, question)
    else:
        log.info("question from user %s in chat %s (%d characters)", user.id, chat.id, len(question))
    if not question:
        return await send(context, chat.id, t(lang, "empty"), quote=quote)
    if len(question) > state.settings.max_question_chars:
        return await send(context, chat.id, t(lang, "too_long", length=len(question),
                                              limit=state.settings.max_question_chars), quote=quote)
    wait = state.limiter.try_acquire(user.id)
    if wait > 0:
        return await send(context, chat.id, t(lang, "slow_down", seconds=math.ceil(wait)), quote=quote)
    asked = expand_followup(question, _previous(context))
    async with show_typing(context, chat.id), state.retrievers.use() as retriever:
        try:
            answer = await asyncio.to_thread(retriever.ask, asked, k=state.settings.top_k)
        except QuestionError as exc:
            return await send(context, chat.id, t(lang, "bad_question", reason=exc), quote=quote)
    if context.chat_data is not None:
        context.chat_data["previous"] = (asked, time.monotonic())
    key = state.results.put(Shown(asked, lang, answer, answer.passages, 1, len(answer.passages)))
    await send(context, chat.id, render_answer(answer, lang), keyboard=_buttons(lang, key), quote=quote)


def _previous(context: ContextTypes.DEFAULT_TYPE) -> str | None:
    previous = (context.chat_data or {}).get("previous")
    if previous is None or time.monotonic() - previous[1] > FOLLOWUP_SECONDS:
        return None
    return previous[0]


def _buttons(lang: str, key: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(t(lang, "button_sources"), callback_data=f"src:{key}"),
        InlineKeyboardButton(t(lang, "button_more"), callback_data=f"more:{key}"),
    ]])


async def _sources(update: Update, context: ContextTypes.DEFAULT_TYPE, shown: Shown) -> None:
    html = render_passages(shown.passages, shown.lang, first_number=shown.first, answer=shown.answer)
    await send(context, update.effective_chat.id, html)  # type: ignore[union-attr]


async def _more(update: Update, context: ContextTypes.DEFAULT_TYPE, shown: Shown) -> None:
    state, chat_id = _state(context), update.effective_chat.id  # type: ignore[union-attr]
    wait = state.limiter.try_acquire(update.effective_user.id)  # type: ignore[union-attr]
    if wait > 0:
        return await send(context, chat_id, t(shown.lang, "slow_down", seconds=math.ceil(wait)))
    async with show_typing(context, chat_id), state.retrievers.use() as retriever:
        passages = await asyncio.to_thread(retriever.search, shown.question, shown.shown + state.settings.top_k)
    fresh = tuple(passages[shown.shown:])
    if not fresh:
        return await send(context, chat_id, t(shown.lang, "no_more"))
    following = replace(shown, passages=fresh, first=shown.shown + 1, shown=shown.shown + len(fresh))
    html = render_passages(fresh, shown.lang, first_number=following.first, full=False,
                           title=t(shown.lang, "more_results", question=shown.question))
    await send(context, chat_id, html, keyboard=_buttons(shown.lang, state.results.put(following)))


# -- wiring and running -----------------------------------------------------------------------


def build_application(settings: Settings, retriever: Retriever, *, index_dir: Path | None = None,
                      timeout: float = 10.0) -> Application:
    """The bot's Application: handlers wired, Bot API timeouts set, talking to settings' API URL.

    With ``index_dir``, a rebuilt index there is reopened between questions (the caller
    still owns and closes ``retriever``). ``timeout`` bounds each Bot API call (a long poll
    gets its own poll timeout on top).
    """
    requests = {"connect_timeout": min(timeout, 5.0), "read_timeout": timeout, "write_timeout": timeout,
                "pool_timeout": timeout}
    base = (settings.telegram_api_url or "https://api.telegram.org/bot").rstrip("/")
    bot = QuietBot(
        _token(settings), base_url=base,
        base_file_url=base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file",
        request=HTTPXRequest(connection_pool_size=64, **requests),  # answers to many chats at once
        get_updates_request=HTTPXRequest(connection_pool_size=1, **requests),  # PTB adds the poll time
    )
    application = (
        Application.builder().bot(bot).concurrent_updates(True)
        .post_init(_post_init).post_shutdown(_post_shutdown).build()
    )
    opener = (lambda folder: Retriever.open(folder, settings=settings, embedder=retriever.embedder)) if index_dir else None
    application.bot_data["qabot"] = BotState(
        settings=settings,
        retrievers=RetrieverHolder(retriever, index_dir=index_dir, opener=opener),
        access=AccessPolicy.from_settings(settings),
        limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst),
        results=ResultStore(ttl=3600.0, max_items=5000),
    )
    application.add_handler(CommandHandler(["start", "help"], start))
    application.add_handler(CommandHandler("ask", on_ask))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(CallbackQueryHandler(on_button, pattern=r"^(src|more):"))
    application.add_error_handler(on_error)
    return application


def _token(settings: Settings) -> str:
    if not settings.telegram_token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set; create a bot with @BotFather (see README)")
    return settings.telegram_token.get()


async def _post_init(application: Application) -> None:
    """Register the command menu; a failure here is no reason not to run."""
    commands = [BotCommand("ask", "ask the archive a question"), BotCommand("help", "what I know and how to ask")]
    try:
        await call_api(application.bot.set_my_commands, commands)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)


async def _post_shutdown(application: Application) -> None:
    """Close the Retrievers reopened after rebuilds (the first one belongs to the caller)."""
    state: BotState = application.bot_data["qabot"]
    state.retrievers.close()


def run_bot(settings: Settings) -> None:
    """Open the index, log "ready", and poll Telegram until Ctrl-C or SIGTERM."""
    protect_logs(_token(settings), log_messages=settings.log_messages)
    if log.getEffectiveLevel() > logging.INFO:  # "ready", questions and refusals are the service's log
        log.setLevel(logging.INFO)
    retriever = Retriever.open(settings.index_dir, settings=settings)
    try:
        application = build_application(settings, retriever, index_dir=settings.index_dir)
        stats = retriever.stats()
        log.info("ready: %s articles, %s chunks (%s – %s), model %s, index %s", stats["articles"], stats["chunks"],
                 stats["first_date"], stats["last_date"], stats["model"], settings.index_dir)
        application.run_polling(
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY], timeout=POLL_TIMEOUT,
            bootstrap_retries=-1,  # the network may come up after us; a bad token still stops at once
        )
    except InvalidToken:  # its message quotes the token: replace it, and drop the traceback
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather") from None
    except TelegramError as exc:  # whatever stopped the bot: one line, token masked
        raise QabotError(f"the Telegram bot stopped: {str(exc).replace(_token(settings), '***')}") from None
    finally:
        retriever.close()
