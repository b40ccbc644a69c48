"""Network block storage: the wire protocol (``wire``), the block server
(``server``, ``volumes``, ``tls``) and the client side (``client``,
``store``). Specified in docs/PROTOCOL.md. The server never imports the
filesystem layer and never sees a key other than the auth-token hash."""
