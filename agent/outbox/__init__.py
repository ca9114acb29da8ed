"""The Slack outbox: messages written in the run's transaction, sent by one paced sender a channel.

`service` is the API (post to a channel, reply in a thread, update a message, all idempotent by
key); `sender` sends them (`flush_channel`, `OutboxSender`); `digest` renders a channel's digest.
"""
