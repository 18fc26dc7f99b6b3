# For the compiled build (setup.py): the peer of peer.py as an extension type. Its attributes
# become C struct fields instead of instance-dict entries; typed as object, they keep Python's
# semantics. It cimports the hub, which is compiled with it as one unit.
from channels_distributed.forwarding.hub cimport Hub

cdef class Peer:
    cdef public Hub hub
    cdef public object conn, machine, owner, watch, remote, remote_id, ack_target
    cdef public object failure, final, _out, _scheduled, _inbound
    cdef public object _wakers, accepted, numbered, sent_seq, recv_seq
    cpdef receive_nowait(self)
    cpdef _wait_or_probe(self, probes)
