"""The Telegram bot: thin async handlers around the Retriever, wired in :func:`build_application`.

A question travels: update -> rate limit -> access check -> length check -> follow-up
expansion (:class:`~qabot.answering.conversation.Conversation`, per user and chat) ->
``Retriever.ask`` in a worker thread (never on the event loop) -> HTML reply
(telegram_format.py) with "Sources"/"More" buttons whose results wait server-side under
short ids (access.py). Bot API calls are retried on network errors, timeouts and 429s
(telegram_api.py); anything else reaches the error handler, which logs it and tells the user.

A flood is never answered message for message: every message and button press that would
make the bot send something takes a token from the sender's bucket first (access.py), and
over the limit the sender is told once when to try again, then nothing is sent until their
window opens. Only new messages and button presses are handled: not edited messages.

The index folder is watched (reloading.py): when ``manifest.json`` changes (a rebuild), the
Retriever is reopened before the next question, with the model the manifest names; the old
one is closed once no question uses it. A reopening that fails is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from qabot.answering.conversation import Conversation
from qabot.answering.retriever import Retriever
from qabot.config import Settings
from qabot.documents import Answer, Passage
from qabot.errors import ConfigError, QabotError
from qabot.frontends.access import AccessPolicy, Admission, RateLimiter, ResultStore, protect_logs
from qabot.frontends.reloading import IndexOpener, RetrieverHolder
from qabot.frontends.telegram_api import call_api, edit, make_bot, send, show_typing
from qabot.frontends.telegram_format import (
    addressed_question,
    ask_me,
    render_answer,
    render_passages,
    t,
    welcome,
)
from qabot.lexicon import detect_language

__all__ = ["ALLOWED_UPDATES", "BotState", "RetrieverHolder", "Shown", "build_application", "newest_title", "poll",
           "run_bot"]

log = logging.getLogger(__name__)

POLL_TIMEOUT = 30  # seconds a getUpdates long poll waits for news
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)  # what getUpdates asks Telegram for
# PTB's MessageHandler and CommandHandler also take edited messages unless told not to; a
# question edited after its answer would be answered again
NEW_MESSAGES = filters.UpdateType.MESSAGE


@dataclass(frozen=True)
class Shown:
    """What a reply showed, kept under a short id for its buttons."""

    question: str  # as asked (a follow-up made whole): "More" searches for it again
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
    conversation: Conversation = field(default_factory=Conversation)
    _title: tuple[object, str | None] | None = field(default=None, init=False, repr=False)  # (retriever, title)

    async def newest_title(self) -> str | None:
        """The current index's newest article title (looked up once per reopened index)."""
        async with self.retrievers.use() as retriever:
            if self._title is None or self._title[0] is not retriever:
                self._title = (retriever, await asyncio.to_thread(newest_title, retriever))
            return self._title[1]

    async def refusal(self, question: str, lang: str) -> str | None:
        """Why ``question`` is not asked (empty, too long), or None to ask it."""
        if not question:
            return ask_me(lang, await self.newest_title())
        limit = self.settings.max_question_chars
        if len(question) > limit:
            return t(lang, "too_long", length=len(question), limit=limit)
        return None

    def log_question(self, user_id: int, chat_id: int, question: str) -> None:
        if self.settings.log_messages:
            log.info("question from user %s in chat %s: %r", user_id, chat_id, question)
        else:
            log.info("question from user %s in chat %s (%d characters)", user_id, chat_id, len(question))


def newest_title(retriever: Any) -> str | None:
    """The title of the newest article in ``retriever``'s index; None when it has none.

    The welcome text quotes it as an example of what the archive holds.
    """
    title = retriever.stats().get("newest_title")
    return str(title) if title else None


def _state(context: ContextTypes.DEFAULT_TYPE) -> BotState:
    return context.bot_data["qabot"]


# -- the handlers -----------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the archive holds and how to ask, in the user's language."""
    user, chat, state = update.effective_user, update.effective_chat, _state(context)
    lang = detect_language(user.language_code if user else None)
    if chat is None or not await _admitted(update, context, lang):
        return
    async with state.retrievers.use() as retriever:
        stats = await asyncio.to_thread(retriever.stats)
    text = welcome(lang, stats, username=context.bot.username, newest_title=await state.newest_title())
    await send(context, chat.id, text)


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
    # Every press is answered, once (the client shows a spinner on the button until then), in
    # the answer itself rather than in the chat: a refusal, or the wait once per window, or
    # nothing (an empty answer shows nothing). Only a press that sends messages takes a token.
    if not state.access.allows(query.from_user.id, update.effective_chat.id):
        await call_api(query.answer, t(lang, "refused", user_id=query.from_user.id), show_alert=True)
    elif shown is None:
        await call_api(query.answer, t(lang, "expired"), show_alert=True)
    elif not (admission := state.limiter.admit(query.from_user.id)).allowed:
        told = _slow_down(query.from_user.id, admission, lang) if admission.tell else None
        await call_api(query.answer, told, show_alert=told is not None)
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


async def _admitted(update: Update, context: ContextTypes.DEFAULT_TYPE, lang: str, *,
                    quote: Message | None = None) -> bool:
    """True when the sender may go on: within their rate limit, and allowed to ask.

    The limit comes first, so that refusals cannot be flooded out of the bot either: over it,
    the sender is told once when to try again (quoting ``quote``), then nothing is sent until
    their window opens. Someone not allowed is told their id (for the operator); nothing runs.
    """
    state, user, chat = _state(context), update.effective_user, update.effective_chat
    if user is None or chat is None:  # nobody to limit, nowhere to answer
        return False
    admission = state.limiter.admit(user.id)
    if not admission.allowed:
        if admission.tell:
            await send(context, chat.id, _slow_down(user.id, admission, lang), quote=quote)
        return False
    if state.access.allows(user.id, chat.id):
        return True
    log.info("refused user %s in chat %s", user.id, chat.id)
    await send(context, chat.id, t(lang, "refused", user_id=user.id))
    return False


def _slow_down(user_id: int, admission: Admission, lang: str) -> str:
    """The one "slow down" of a window (logged: the refused tries after it are not)."""
    log.info("user %s is over the rate limit; told to wait %.0f s, quiet until then", user_id, admission.wait)
    return t(lang, "slow_down", seconds=math.ceil(admission.wait))


async def _answer(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    """Check, limit, ask (a follow-up made whole) in a worker thread, reply with buttons."""
    state, user, chat = _state(context), update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    lang = detect_language(user.language_code, question)
    quote = update.effective_message if chat.type != ChatType.PRIVATE else None
    if not await _admitted(update, context, lang, quote=quote):
        return
    state.log_question(user.id, chat.id, question)
    if (refusal := await state.refusal(question, lang)) is not None:
        return await send(context, chat.id, refusal, quote=quote)
    async with show_typing(context, chat.id), state.retrievers.use() as retriever:
        turn = await asyncio.to_thread(state.conversation.ask, question, chat=(chat.id, user.id),
                                       retriever=retriever, k=state.settings.top_k)
    if turn.answer is None:
        return await send(context, chat.id, t(lang, "bad_question", reason=turn.message), quote=quote)
    key = state.results.put(Shown(turn.asked, lang, turn.answer, turn.answer.passages, 1, len(turn.answer.passages)))
    sent = await send(context, chat.id, render_answer(turn.answer, lang), keyboard=_buttons(lang, key), quote=quote)
    if sent and turn.answer.found:
        await _refine(context, chat.id, turn.answer, sent[-1] if len(sent) == 1 else None, lang, key)


async def _refine(context: ContextTypes.DEFAULT_TYPE, chat_id: int, answer: Answer, message: Message | None,
                  lang: str, key: str) -> None:
    """With an LLM: its checked answer replaces the extractive one (typing shown meanwhile)."""
    async with _state(context).retrievers.use() as retriever:
        if getattr(retriever, "llm", None) is None:
            return
        async with show_typing(context, chat_id):
            refined = await asyncio.to_thread(retriever.refine, answer)
    if refined.reply_source != "llm":
        return
    state = _state(context)
    if (shown := state.results.get(key)) is not None:  # the buttons of the edit hold the refined answer
        key = state.results.put(replace(shown, answer=refined))
    html = render_answer(refined, lang)
    if message is None or not await edit(context, message, html, keyboard=_buttons(lang, key)):
        await send(context, chat_id, html, keyboard=_buttons(lang, key))


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

    With ``index_dir``, a rebuilt index there is reopened between questions, with the model
    its manifest names (the caller still owns and closes ``retriever``). ``timeout`` bounds
    each Bot API call (a long poll gets its own poll timeout on top).
    """
    bot = make_bot(_token(settings), settings.telegram_api_url, timeout=timeout)
    application = (
        Application.builder().bot(bot).concurrent_updates(True)
        .post_init(_post_init).post_shutdown(_post_shutdown).build()
    )
    opener = IndexOpener(settings, retriever.embedder) if index_dir else None
    application.bot_data["qabot"] = BotState(
        settings=settings,
        retrievers=RetrieverHolder(retriever, index_dir=index_dir, opener=opener),
        access=AccessPolicy.from_settings(settings),
        limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst),
        results=ResultStore(ttl=3600.0, max_items=5000),
    )
    application.add_handler(CommandHandler(["start", "help"], start, filters=NEW_MESSAGES))
    application.add_handler(CommandHandler("ask", on_ask, filters=NEW_MESSAGES))
    application.add_handler(MessageHandler(NEW_MESSAGES & filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(CallbackQueryHandler(on_button, pattern=r"^(src|more):"))
    application.add_error_handler(on_error)
    return application


def _token(settings: Settings) -> str:
    if not settings.telegram_token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set; create a bot with @BotFather (see docs/using.md)")
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


def poll(application: Application) -> None:
    """Poll Telegram for new messages and button presses until Ctrl-C or SIGTERM.

    ``ALLOWED_UPDATES`` spares Telegram sending what the bot ignores; the handlers still
    filter (``NEW_MESSAGES``), since updates created before a getUpdates call changed that
    setting are delivered anyway.
    """
    application.run_polling(
        allowed_updates=ALLOWED_UPDATES, timeout=POLL_TIMEOUT,
        bootstrap_retries=-1,  # the network may come up after us; a bad token still stops at once
    )


def run_bot(settings: Settings) -> None:
    """Open the index, log "ready", and poll Telegram until Ctrl-C or SIGTERM."""
    protect_logs(_token(settings), log_messages=settings.log_messages)
    if log.getEffectiveLevel() > logging.INFO:  # "ready", questions and refusals are the service's log
        log.setLevel(logging.INFO)
    retriever = Retriever.open(settings.index_dir, settings=settings)
    try:
        retriever.warm_up()  # before "ready": the first question is not the slow one
        application = build_application(settings, retriever, index_dir=settings.index_dir)
        stats = retriever.stats()
        log.info("ready: %s articles, %s chunks (%s – %s), model %s, index %s", stats["articles"], stats["chunks"],
                 stats["first_date"], stats["last_date"], stats["model"], settings.index_dir)
        poll(application)
    except InvalidToken:  # its message quotes the token: replace it, and drop the traceback
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather") from None
    except TelegramError as exc:  # whatever stopped the bot: one line, token masked
        raise QabotError(f"the Telegram bot stopped: {str(exc).replace(_token(settings), '***')}") from None
    finally:
        retriever.close()
