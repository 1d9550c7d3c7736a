"""Telling people: the notification sender and its channels (docs/NOTIFICATIONS.md).

Owns the sender (claims the outbox's due messages, one per destination at a time, delivers them with
retries and backoff, records every attempt and puts the outcome on the call's timeline) and the channels
(an HTTP SMS gateway, WeCom and DingTalk group robots, a signed webhook, Web Push). Who must be told is
decided by ``dispatch.core.notices`` and written by the store in the command's transaction; this package
only delivers. It must not import the real-time or timer packages (they meet in ``web.services``).
"""
