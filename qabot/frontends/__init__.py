"""What users talk to: the CLI, the terminal chat, the Telegram bot (formatting, access control, reloading)."""
