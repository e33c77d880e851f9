"""The lesson's TCP echo server: the server (tcp), the code its handler processes run
(handler), and a client that loads it and checks every echo (echo_client)."""
