"""What a running hub node holds (``HubState``) and how a connection proves who it is (``credentials``).

Owns: the shared service container and credential extraction (bearer header, cookie; ``?token=`` on the WebSocket only).
Promises: adapters reach the node's parts through ``HubState`` without importing each other.
Must not import: ``realtime``, ``timers``, ``web``, ``cli`` (services are typed by a protocol).
"""
