# For the compiled build (setup.py): the hub of hub.py as an extension type. Its attributes become
# C struct fields instead of instance-dict entries; typed as object, they keep Python's semantics.
cdef class Hub:
    cdef public object keys, id, side, inbox, peers, capacity, ttl_ms
    cdef public object loop, state, topology, _reader, _idle
