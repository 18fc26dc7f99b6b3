"""The I/O shells of forwarded connections, shared by the distributor and the workers: a
process's ``Hub`` (its inbox, handing entries to its connections) and each connection's ``Peer``
(carrying out what its ``protocol.forwarding`` machine decides). They reach Redis only through
``transport``."""
