"""What users talk to; settings are read here (and in config), errors become one line or a kind reply.

``cli``              the ``qabot`` command (index, ask, search, chat, run, bot, serve, delete, check, stats, model)
``chat``             the terminal chat's plain-text rendering
``bot``              the Telegram bot: thin handlers wired in ``build_application``
``telegram_api``     Bot API calls with retries (send, edit, typing)
``telegram_format``  Telegram HTML rendering, message splitting, texts in English and German
``access``           who may use the bot, rate limits, results kept for the buttons
``reloading``        reopen a rebuilt index between questions (the bot and the HTTP API)
``api/``             ``qabot serve``: the HTTP API, its OpenAI-compatible endpoint and the web page
"""
