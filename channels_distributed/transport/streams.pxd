# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class Hub:
    cdef public object keys, id, side, inbox, peers, capacity, ttl_ms
    cdef public object loop, state, topology, _reader, _idle

cdef class Peer:
    cdef public object hub, conn, machine, owner, watch, remote, remote_id, held, ack_with
    cdef public object finished, failed, final, _out, _scheduled, _inbound
    cdef public object _wakers, accepted
